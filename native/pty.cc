// Pseudo-terminal pairs for the serial robot console: the emulator holds the master, a
// client (or a real serial tool) opens the slave path as if it were a tty.
#include <fcntl.h>
#include <napi.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"
#include "register.h"

namespace ptpvts {
namespace {

// Not an AsyncWorker: none of these calls blocks.
Napi::Value OpenPty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) throw ErrnoError(env, errno, "posix_openpt");
  auto fail = [&](const char* call, const std::string& path = {}) {
    const int err = errno;
    close(master);
    throw ErrnoError(env, err, call, path);
  };
  if (grantpt(master) != 0) fail("grantpt");
  if (unlockpt(master) != 0) fail("unlockpt");
  char name[128];
  if (ptsname_r(master, name, sizeof name) != 0) fail("ptsname_r");
  const int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) fail("open", name);
  // Raw: bytes pass unchanged (no echo, no CR/LF mapping, no signals from ^C), which is
  // what a binary or line protocol over a serial link expects.
  struct termios t;
  if (tcgetattr(slave, &t) != 0) {
    const int err = errno;
    close(slave);
    errno = err;
    fail("tcgetattr", name);
  }
  cfmakeraw(&t);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(slave, TCSANOW, &t) != 0) {
    const int err = errno;
    close(slave);
    errno = err;
    fail("tcsetattr", name);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("masterFd", Napi::Number::New(env, master));
  r.Set("slaveFd", Napi::Number::New(env, slave));
  r.Set("slavePath", Napi::String::New(env, name));
  return r;
}

}  // namespace

void RegisterPty(Napi::Env env, Napi::Object exports) { exports.Set("openPty", Napi::Function::New(env, OpenPty, "openPty")); }

}  // namespace ptpvts
