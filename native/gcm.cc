// AES-256-GCM sealing into a caller's buffer, for the emulated drive's encryption
// (firmware-sim/ssc/codec.ts). node:crypto's Cipher.update returns a new buffer for every
// call: at drive speed that is hundreds of MiB of short-lived external memory a second,
// and the garbage collections it causes cost more than the cipher. Here the ciphertext
// goes straight into the payload buffer the drive reuses, with one cipher context kept
// per thread.
//
// OpenSSL is Node's own: the headers come from Node's include directory (binding.gyp
// puts it first) and the symbols from the node binary, which exports them. Nothing links
// the system's libcrypto, so the addon always runs the OpenSSL Node runs.
#include <napi.h>
#include <openssl/evp.h>

#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <thread>

#include "register.h"

namespace ptpvts {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

Napi::Uint8Array Bytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string("gcmSeal(key, nonce, aad, plain, out, tag): ") + name + " must be a Uint8Array or Buffer");
  }
  return info[i].As<Napi::Uint8Array>();
}

// One context per thread, reused: EVP_CIPHER_CTX_new per block would allocate again.
struct Context {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~Context() { EVP_CIPHER_CTX_free(ctx); }
};

[[noreturn]] void Fail(Napi::Env env, const char* step) {
  throw Napi::Error::New(env, std::string("gcmSeal: OpenSSL failed at ") + step);
}

// One sealing job, in plain pointers so that any thread can run it.
struct Job {
  const uint8_t* key;
  const uint8_t* nonce;
  const uint8_t* aad;
  size_t aadLen;
  const uint8_t* in;
  uint8_t* out;
  size_t len;
  uint8_t* tag;
};

// Runs `j` with this thread's context; nullptr on success, else the step that failed.
const char* Seal(const Job& j) {
  thread_local Context c;
  if (c.ctx == nullptr) return "EVP_CIPHER_CTX_new";
  int n = 0;
  if (EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1) return "EVP_EncryptInit_ex";
  if (EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1) return "EVP_CTRL_GCM_SET_IVLEN";
  if (EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, j.key, j.nonce) != 1) return "EVP_EncryptInit_ex (key)";
  if (j.aadLen > 0 && EVP_EncryptUpdate(c.ctx, nullptr, &n, j.aad, static_cast<int>(j.aadLen)) != 1) return "EVP_EncryptUpdate (aad)";
  int written = 0;
  if (j.len > 0 && EVP_EncryptUpdate(c.ctx, j.out, &written, j.in, static_cast<int>(j.len)) != 1) return "EVP_EncryptUpdate";
  int last = 0;
  if (EVP_EncryptFinal_ex(c.ctx, j.out + written, &last) != 1) return "EVP_EncryptFinal_ex";
  if (static_cast<size_t>(written + last) != j.len) return "EVP_EncryptUpdate (length)";
  if (EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), j.tag) != 1) return "EVP_CTRL_GCM_GET_TAG";
  return nullptr;
}

// A thread that seals one job while the caller seals another: a block's two GCM segments
// on two cores. Made once, kept for the process (never joined: it waits on its condition
// variable when idle). Used by one caller at a time; another finds it busy and seals alone.
class Helper {
 public:
  Helper() : thread_([this] { Loop(); }) { thread_.detach(); }
  bool TryAcquire() { return busy_.try_lock(); }
  void Release() { busy_.unlock(); }
  void Start(const Job& j) {
    std::lock_guard<std::mutex> g(m_);
    job_ = j;
    has_ = true;
    done_ = false;
    cv_.notify_all();
  }
  const char* Wait() {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [this] { return done_; });
    return error_;
  }

 private:
  void Loop() {
    for (;;) {
      Job j;
      {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait(g, [this] { return has_; });
        j = job_;
        has_ = false;
      }
      const char* e = Seal(j);
      std::lock_guard<std::mutex> g(m_);
      error_ = e;
      done_ = true;
      cv_.notify_all();
    }
  }
  std::mutex busy_;
  std::mutex m_;
  std::condition_variable cv_;
  Job job_{};
  bool has_ = false;
  bool done_ = false;
  const char* error_ = nullptr;
  std::thread thread_;
};

Helper& SharedHelper() {
  static Helper* h = new Helper();
  return *h;
}

// gcmSeal(key[32], nonce[12], aad, plain, out, tag[16]): out[0..plain.length) = the
// ciphertext of plain; tag = the GCM tag. out may be plain itself (in place), never
// overlap it otherwise.
Napi::Value GcmSeal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto key = Bytes(info, 0, "key");
  auto nonce = Bytes(info, 1, "nonce");
  auto aad = Bytes(info, 2, "aad");
  auto plain = Bytes(info, 3, "plain");
  auto out = Bytes(info, 4, "out");
  auto tag = Bytes(info, 5, "tag");
  if (key.ByteLength() != kKeyBytes) throw Napi::RangeError::New(env, "gcmSeal: key must be 32 bytes");
  if (nonce.ByteLength() != kNonceBytes) throw Napi::RangeError::New(env, "gcmSeal: nonce must be 12 bytes");
  if (tag.ByteLength() != kTagBytes) throw Napi::RangeError::New(env, "gcmSeal: tag must be 16 bytes");
  if (out.ByteLength() < plain.ByteLength()) throw Napi::RangeError::New(env, "gcmSeal: out is shorter than plain");
  if (plain.ByteLength() > static_cast<size_t>(std::numeric_limits<int>::max()) || aad.ByteLength() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    throw Napi::RangeError::New(env, "gcmSeal: input too large");
  }
  const uint8_t* p = plain.Data();
  uint8_t* o = out.Data();
  if (o != p && o < p + plain.ByteLength() && p < o + plain.ByteLength()) throw Napi::RangeError::New(env, "gcmSeal: out overlaps plain without being it");

  if (const char* e = Seal(Job{key.Data(), nonce.Data(), aad.Data(), aad.ByteLength(), p, o, plain.ByteLength(), tag.Data()})) Fail(env, e);
  return env.Undefined();
}

// gcmSeal2(key, nonce0, nonce1, aad, plain0, out0, tag0, plain1, out1, tag1): two seals
// with one key and AAD, the second on the helper thread while this one does the first.
// Each outN is its plainN or does not overlap it; the two outputs must not overlap.
Napi::Value GcmSeal2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto key = Bytes(info, 0, "key");
  auto aad = Bytes(info, 3, "aad");
  if (key.ByteLength() != kKeyBytes) throw Napi::RangeError::New(env, "gcmSeal2: key must be 32 bytes");
  Job jobs[2];
  for (int k = 0; k < 2; k++) {
    auto nonce = Bytes(info, 1 + k, "nonce");
    auto plain = Bytes(info, 4 + 3 * k, "plain");
    auto out = Bytes(info, 5 + 3 * k, "out");
    auto tag = Bytes(info, 6 + 3 * k, "tag");
    if (nonce.ByteLength() != kNonceBytes) throw Napi::RangeError::New(env, "gcmSeal2: nonce must be 12 bytes");
    if (tag.ByteLength() != kTagBytes) throw Napi::RangeError::New(env, "gcmSeal2: tag must be 16 bytes");
    if (out.ByteLength() < plain.ByteLength()) throw Napi::RangeError::New(env, "gcmSeal2: out is shorter than plain");
    if (plain.ByteLength() > static_cast<size_t>(std::numeric_limits<int>::max()) || aad.ByteLength() > static_cast<size_t>(std::numeric_limits<int>::max())) {
      throw Napi::RangeError::New(env, "gcmSeal2: input too large");
    }
    const uint8_t* p = plain.Data();
    uint8_t* o = out.Data();
    if (o != p && o < p + plain.ByteLength() && p < o + plain.ByteLength()) throw Napi::RangeError::New(env, "gcmSeal2: out overlaps plain without being it");
    jobs[k] = Job{key.Data(), nonce.Data(), aad.Data(), aad.ByteLength(), p, o, plain.ByteLength(), tag.Data()};
  }
  if (jobs[0].out < jobs[1].out + jobs[1].len && jobs[1].out < jobs[0].out + jobs[0].len) throw Napi::RangeError::New(env, "gcmSeal2: the two outputs overlap");
  Helper& h = SharedHelper();
  if (!h.TryAcquire()) {
    for (const Job& j : jobs)
      if (const char* e = Seal(j)) Fail(env, e);
    return env.Undefined();
  }
  h.Start(jobs[1]);
  const char* e0 = Seal(jobs[0]);
  const char* e1 = h.Wait();
  h.Release();
  if (e0) Fail(env, e0);
  if (e1) Fail(env, e1);
  return env.Undefined();
}

}  // namespace

void RegisterGcm(Napi::Env env, Napi::Object exports) {
  exports.Set("gcmSeal", Napi::Function::New(env, GcmSeal, "gcmSeal"));
  exports.Set("gcmSeal2", Napi::Function::New(env, GcmSeal2, "gcmSeal2"));
}

}  // namespace ptpvts
