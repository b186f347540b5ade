// Starting writeback of a file range (sync_file_range with SYNC_FILE_RANGE_WRITE) on the
// libuv threadpool. It makes nothing durable: it asks the kernel to begin writing dirty
// pages of the range now, so that a later fdatasync (a tape sync point) waits only for what
// is still in flight. The call can block while the device's request queue is full, which
// is why it runs off the event loop.
#include <fcntl.h>
#include <napi.h>

#include <cerrno>
#include <cstdint>

#include "errors.h"
#include "register.h"

namespace ptpvts {
namespace {

class WritebackTask : public Napi::AsyncWorker {
 public:
  WritebackTask(Napi::Function cb, int fd, int64_t offset, int64_t length)
      : Napi::AsyncWorker(cb, "ptpvts.startWriteback"), fd_(fd), offset_(offset), length_(length) {}

  void Execute() override {
    if (sync_file_range(fd_, offset_, length_, SYNC_FILE_RANGE_WRITE) != 0) err_ = errno;
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0) {
      Callback().Call({ErrnoError(env, err_, "sync_file_range").Value()});
    } else {
      Callback().Call({env.Null()});
    }
  }

 private:
  int fd_;
  int64_t offset_;
  int64_t length_;
  int err_ = 0;
};

int64_t Integer(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Env env = info.Env();
  if (!info[i].IsNumber()) throw Napi::TypeError::New(env, std::string("startWriteback(fd, offset, length, callback): ") + name + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > 9007199254740991.0 || v != static_cast<double>(static_cast<int64_t>(v))) {
    throw Napi::RangeError::New(env, std::string("startWriteback(fd, offset, length, callback): ") + name + " must be a non-negative integer");
  }
  return static_cast<int64_t>(v);
}

Napi::Value StartWritebackJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[3].IsFunction()) throw Napi::TypeError::New(env, "startWriteback(fd, offset, length, callback): callback must be a function");
  const int64_t fd = Integer(info, 0, "fd");
  const int64_t offset = Integer(info, 1, "offset");
  const int64_t length = Integer(info, 2, "length");
  if (fd > INT32_MAX) throw Napi::RangeError::New(env, "startWriteback(fd, offset, length, callback): fd is out of range");
  (new WritebackTask(info[3].As<Napi::Function>(), static_cast<int>(fd), offset, length))->Queue();
  return env.Undefined();
}

}  // namespace

void RegisterWriteback(Napi::Env env, Napi::Object exports) {
  exports.Set("startWriteback", Napi::Function::New(env, StartWritebackJs, "startWriteback"));
}

}  // namespace ptpvts
