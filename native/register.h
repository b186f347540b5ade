#pragma once
// Each native area adds its exports to the module object through one of these.
#include <napi.h>

namespace ptpvts {
// Per-environment state (worker threads get their own): constructors the addon needs to
// call from C++. Owned by the environment, freed with it.
struct AddonData {
  Napi::FunctionReference sgDevice;
};

void RegisterVoteTally(Napi::Env env, Napi::Object exports);
void RegisterKeyJournal(Napi::Env env, Napi::Object exports);
void RegisterSgio(Napi::Env env, Napi::Object exports);
void RegisterPty(Napi::Env env, Napi::Object exports);
void RegisterGcm(Napi::Env env, Napi::Object exports);
void RegisterWriteback(Napi::Env env, Napi::Object exports);
}  // namespace ptpvts
