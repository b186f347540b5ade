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

inline Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path = {}) {
  std::string code = ErrnoName(err);
  std::string message = code + ": " + ErrnoText(err) + ", " + syscall;
  if (!path.empty()) message += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
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
