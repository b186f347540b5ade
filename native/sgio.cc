// Linux SCSI generic (sg v3) pass-through: open a node, run SG_IO. Syscalls only: the
// status triage (host, then driver, then SCSI status) and every SCSI meaning live in
// src/transport/sgio.
#include <fcntl.h>
#include <napi.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"
#include "register.h"

namespace ptpvts {
namespace {

// sg v3 is version 3.0.0 and later.
constexpr int kMinSgVersion = 30000;
// sb_len_wr is an unsigned char: the most sense the driver can hand back.
constexpr size_t kSenseMax = 252;
// cmd_len is an unsigned char and the sg driver caps it lower still.
constexpr size_t kCdbMax = 252;

enum Direction : uint32_t { kNone = 0, kIn = 1, kOut = 2 };

class SgDevice;

class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, std::string path)
      : Napi::AsyncWorker(env, "ptpvts.sgOpen"), path_(std::move(path)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    // O_NONBLOCK lets st/ch nodes open without a loaded medium; SG_IO itself still blocks.
    fd_ = open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) return fail_.set(errno, "open", path_);
    int version = 0;
    if (ioctl(fd_, SG_GET_VERSION_NUM, &version) != 0 || version < kMinSgVersion) {
      // Anything that does not answer like sg v3 is not a SCSI generic node for us.
      fail_.set(ENOTTY, "ioctl", path_);
      close(fd_);
      fd_ = -1;
      return;
    }
    version_ = version;
  }

  void OnOK() override;
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string path_;
  Napi::Promise::Deferred deferred_;
  int fd_ = -1;
  int version_ = 0;
  OsFailure fail_;
};

class SgDevice : public Napi::ObjectWrap<SgDevice> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SgDevice",
                       {
                           InstanceMethod<&SgDevice::Execute>("execute"),
                           InstanceMethod<&SgDevice::Close>("close"),
                           InstanceAccessor<&SgDevice::Version>("version"),
                       });
  }

  // Constructed only by sgOpen with an already-checked descriptor.
  explicit SgDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SgDevice>(info) {
    if (info.Length() < 3 || !info[0].IsExternal() || !info[1].IsString() || !info[2].IsNumber()) {
      throw Napi::TypeError::New(info.Env(), "SgDevice is created by sgOpen(path)");
    }
    fd_ = *info[0].As<Napi::External<int>>().Data();
    path_ = info[1].As<Napi::String>().Utf8Value();
    version_ = info[2].As<Napi::Number>().Int32Value();
  }

  ~SgDevice() override {
    if (fd_ >= 0) close(fd_);
  }

  void Done() {
    --inflight_;
    MaybeClose();
    Unref();
  }

  const std::string& path() const { return path_; }

 private:
  Napi::Value Execute(const Napi::CallbackInfo& info);

  Napi::Value Close(const Napi::CallbackInfo& info) {
    closing_ = true;
    MaybeClose();
    return info.Env().Undefined();
  }

  Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), version_); }

  // An ioctl still running keeps the descriptor: closing under it could let the number
  // be reused by an unrelated open while the kernel still completes into it.
  void MaybeClose() {
    if (closing_ && inflight_ == 0 && fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  int fd_ = -1;
  int version_ = 0;
  std::string path_;
  bool closing_ = false;
  int inflight_ = 0;
};

class ExecuteWorker : public Napi::AsyncWorker {
 public:
  ExecuteWorker(Napi::Env env, SgDevice* device, int fd, std::vector<uint8_t> cdb, Direction dir, Napi::Uint8Array dataOut,
                size_t dataInLength, uint32_t timeoutMs)
      : Napi::AsyncWorker(env, "ptpvts.sgExecute"),
        path_(device->path()),
        device_(device),
        fd_(fd),
        cdb_(std::move(cdb)),
        dir_(dir),
        timeoutMs_(timeoutMs),
        deferred_(Napi::Promise::Deferred::New(env)) {
    if (dir == kOut) {
      // Zero copy: the caller's bytes are read in place, kept alive by this reference.
      out_ = Napi::Persistent(dataOut.As<Napi::Object>());
      xfer_ = dataOut.Data();
      xferLen_ = dataOut.ByteLength();
    } else if (dir == kIn) {
      Napi::Buffer<uint8_t> in = Napi::Buffer<uint8_t>::New(env, dataInLength);
      in_ = Napi::Persistent(in);
      xfer_ = in.Data();
      xferLen_ = dataInLength;
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    sg_io_hdr_t h{};
    h.interface_id = 'S';
    h.cmd_len = static_cast<unsigned char>(cdb_.size());
    h.cmdp = cdb_.data();
    h.dxfer_direction = dir_ == kIn ? SG_DXFER_FROM_DEV : dir_ == kOut ? SG_DXFER_TO_DEV : SG_DXFER_NONE;
    h.dxfer_len = static_cast<unsigned int>(xferLen_);
    h.dxferp = xferLen_ > 0 ? xfer_ : nullptr;
    h.mx_sb_len = static_cast<unsigned char>(kSenseMax);
    h.sbp = sense_;
    h.timeout = timeoutMs_;
    const auto start = std::chrono::steady_clock::now();
    int r;
    do {
      r = ioctl(fd_, SG_IO, &h);
    } while (r < 0 && errno == EINTR);
    durationNs_ = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    if (r < 0) return fail_.set(errno, "ioctl", path_);
    status_ = h.status;
    host_ = h.host_status;
    driver_ = h.driver_status;
    senseLen_ = h.sb_len_wr;
    resid_ = h.resid;
    info_ = h.info;
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (fail_.failed()) {
      deferred_.Reject(ErrnoError(env, fail_.err, fail_.syscall, fail_.path).Value());
    } else {
      Napi::Object r = Napi::Object::New(env);
      r.Set("status", Napi::Number::New(env, status_));
      r.Set("hostStatus", Napi::Number::New(env, host_));
      r.Set("driverStatus", Napi::Number::New(env, driver_));
      r.Set("sense", Napi::Buffer<uint8_t>::Copy(env, sense_, senseLen_ > kSenseMax ? kSenseMax : senseLen_));
      r.Set("data", in_.IsEmpty() ? Napi::Buffer<uint8_t>::New(env, 0).As<Napi::Value>() : in_.Value().As<Napi::Value>());
      r.Set("resid", Napi::Number::New(env, resid_));
      r.Set("durationNs", Napi::Number::New(env, durationNs_));
      r.Set("info", Napi::Number::New(env, info_));
      deferred_.Resolve(r);
    }
    device_->Done();
  }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(e.Value());
    device_->Done();
  }

 private:
  std::string path_;  // copied: the worker thread must not reach into the JS-owned device
  SgDevice* device_;
  int fd_;
  std::vector<uint8_t> cdb_;
  Direction dir_;
  uint32_t timeoutMs_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference out_;
  Napi::Reference<Napi::Buffer<uint8_t>> in_;
  uint8_t* xfer_ = nullptr;
  size_t xferLen_ = 0;
  uint8_t sense_[kSenseMax] = {};
  OsFailure fail_;
  int status_ = 0, host_ = 0, driver_ = 0, resid_ = 0;
  unsigned senseLen_ = 0, info_ = 0;
  double durationNs_ = 0;
};

Napi::Value SgDevice::Execute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "execute(cdb, direction, dataOut, dataInLength, timeoutMs)";
  if (info.Length() < 5 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber()) {
    throw Napi::TypeError::New(env, std::string(usage) + ": bad arguments");
  }
  auto cdbArr = info[0].As<Napi::TypedArray>();
  if (cdbArr.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, std::string(usage) + ": cdb must be a Uint8Array");
  auto cdb = cdbArr.As<Napi::Uint8Array>();
  if (cdb.ByteLength() < 1 || cdb.ByteLength() > kCdbMax) throw Napi::RangeError::New(env, std::string(usage) + ": cdb must be 1..252 bytes");
  const uint32_t dir = info[1].As<Napi::Number>().Uint32Value();
  if (dir > kOut) throw Napi::RangeError::New(env, std::string(usage) + ": direction must be 0, 1 or 2");
  Napi::Uint8Array out;
  if (dir == kOut) {
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, std::string(usage) + ": dataOut must be a Uint8Array for direction out");
    }
    out = info[2].As<Napi::Uint8Array>();
  }
  const double inLen = info[3].As<Napi::Number>().DoubleValue();
  if (!(inLen >= 0 && inLen <= 0x7fffffff)) throw Napi::RangeError::New(env, std::string(usage) + ": dataInLength out of range");
  const double timeout = info[4].As<Napi::Number>().DoubleValue();
  if (!(timeout >= 1 && timeout <= 0xffffffff)) throw Napi::RangeError::New(env, std::string(usage) + ": timeoutMs out of range");
  if (closing_ || fd_ < 0) {
    Napi::Error e = Napi::Error::New(env, "SG device " + path_ + " is closed");
    e.Set("code", Napi::String::New(env, "ECLOSED"));
    throw e;
  }
  std::vector<uint8_t> bytes(cdb.Data(), cdb.Data() + cdb.ByteLength());
  auto* w = new ExecuteWorker(env, this, fd_, std::move(bytes), static_cast<Direction>(dir), out,
                              dir == kIn ? static_cast<size_t>(inLen) : 0, static_cast<uint32_t>(timeout));
  ++inflight_;
  Ref();
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

void OpenWorker::OnOK() {
  Napi::Env env = Env();
  if (fail_.failed()) {
    deferred_.Reject(ErrnoError(env, fail_.err, fail_.syscall, fail_.path).Value());
    return;
  }
  AddonData* data = env.GetInstanceData<AddonData>();
  int fd = fd_;
  fd_ = -1;
  try {
    Napi::Object device = data->sgDevice.New({Napi::External<int>::New(env, &fd), Napi::String::New(env, path_), Napi::Number::New(env, version_)});
    deferred_.Resolve(device);
  } catch (const Napi::Error& e) {
    close(fd);
    deferred_.Reject(e.Value());
  }
}

Napi::Value SgOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "sgOpen(path): path must be a string");
  auto* w = new OpenWorker(env, info[0].As<Napi::String>().Utf8Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void RegisterSgio(Napi::Env env, Napi::Object exports) {
  env.GetInstanceData<AddonData>()->sgDevice = Napi::Persistent(SgDevice::Define(env));
  exports.Set("sgOpen", Napi::Function::New(env, SgOpen, "sgOpen"));
}

}  // namespace ptpvts
