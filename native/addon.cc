// Module entry: each native area registers its exports here. native/ knows syscalls
// and byte layouts, never SCSI semantics (DESIGN.md).
#include <napi.h>

#include "crc32c.h"
#include "register.h"

namespace ptpvts {
namespace {

Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw Napi::TypeError::New(env, "crc32c(data, seed?): data must be a Uint8Array or Buffer");
  }
  auto arr = info[0].As<Napi::TypedArray>();
  if (arr.TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "crc32c(data, seed?): data must be a Uint8Array or Buffer");
  }
  auto u8 = arr.As<Napi::Uint8Array>();
  uint32_t seed = 0;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "crc32c(data, seed?): seed must be a number");
    seed = info[1].As<Napi::Number>().Uint32Value();
  }
  return Napi::Number::New(env, Crc32c(seed, u8.Data(), u8.ByteLength()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<AddonData>(new AddonData());
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs, "crc32c"));
  RegisterVoteTally(env, exports);
  RegisterKeyJournal(env, exports);
  RegisterSgio(env, exports);
  RegisterPty(env, exports);
  RegisterGcm(env, exports);
  RegisterWriteback(env, exports);
  return exports;
}

}  // namespace
}  // namespace ptpvts

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ptpvts::Init(env, exports); }

NODE_API_MODULE(ptpvts, InitModule)
