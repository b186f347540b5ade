#pragma once
// OS failures cross into JS as real Error objects that keep the numeric errno beside the
// symbolic code, the way Node's own fs errors do, so callers can branch on `code` and
// nothing is flattened into a string.
#include <napi.h>
#include <uv.h>

#include <cstring>
#include <string>

namespace ptpvts {

inline std::string ErrnoName(int err) {
  // libuv's names match Node's `code` strings; on Linux UV_E* == -errno.
  const char* name = uv_err_name(-err);
  if (name == nullptr || std::strncmp(name, "Unknown", 7) == 0) return "E" + std::to_string(err);
  return name;
}

inline std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r may return a static string instead of filling buf.
  const char* text = strerror_r(err, buf, sizeof buf);
  return text != nullptr ? text : "unknown error";
}

// "ENOENT: no such file or directory, open '/x'", as Node words its fs errors.
inline std::string ErrnoMessage(int err, const std::string& syscall, const std::string& path = {}) {
  std::string message = ErrnoName(err) + ": " + ErrnoText(err) + ", " + syscall;
  if (!path.empty()) message += " '" + path + "'";
  return message;
}

inline Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path = {}) {
  const std::string code = ErrnoName(err);
  Napi::Error e = Napi::Error::New(env, ErrnoMessage(err, syscall, path));
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

// ErrnoError (without a path) made with plain N-API calls that never throw: nullptr when
// the environment refuses one of them, as it does while it is torn down. For completions
// that may run then (a worker thread terminated with work in flight).
inline napi_value ErrnoErrorOrNull(napi_env env, int err, const char* syscall) {
  const std::string code = ErrnoName(err);
  const std::string message = ErrnoMessage(err, syscall);
  napi_value msg, codeValue, errnoValue, syscallValue, error;
  if (napi_create_string_utf8(env, message.c_str(), message.size(), &msg) != napi_ok || napi_create_error(env, nullptr, msg, &error) != napi_ok) return nullptr;
  if (napi_create_string_utf8(env, code.c_str(), code.size(), &codeValue) != napi_ok || napi_set_named_property(env, error, "code", codeValue) != napi_ok) return nullptr;
  if (napi_create_int32(env, err, &errnoValue) != napi_ok || napi_set_named_property(env, error, "errno", errnoValue) != napi_ok) return nullptr;
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscallValue) != napi_ok || napi_set_named_property(env, error, "syscall", syscallValue) != napi_ok) return nullptr;
  return error;
}

// A failed syscall as seen from a worker thread: captured there, turned into a JS error
// on the main thread.
struct OsFailure {
  int err = 0;
  std::string syscall;
  std::string path;
  bool failed() const { return err != 0; }
  void set(int e, const char* call, const std::string& p = {}) {
    if (err != 0) return;  // keep the first failure: later ones are usually consequences
    err = e;
    syscall = call;
    path = p;
  }
};

}  // namespace ptpvts
