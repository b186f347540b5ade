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

  // The callback is called with raw N-API calls whose failures are ignored: when a worker
  // thread is terminated with a range in flight, its environment can no longer run
  // JavaScript, and AsyncWorker's own delivery (handle scope, Function::Call, Error::New)
  // would throw out of this libuv callback or abort the process. The callback is then
  // dropped: the cartridge it belongs to is gone with the worker.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (status != napi_cancelled) Deliver(env);
    Destroy();
  }

 private:
  void Deliver(napi_env env) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value cb = nullptr;
    napi_value recv = nullptr;
    napi_value arg = nullptr;
    if (err_ != 0) arg = ErrnoErrorOrNull(env, err_, "sync_file_range");
    else napi_get_null(env, &arg);
    if (arg != nullptr && napi_get_reference_value(env, static_cast<napi_ref>(Callback()), &cb) == napi_ok && cb != nullptr &&
        napi_get_undefined(env, &recv) == napi_ok) {
      napi_value result;
      if (napi_call_function(env, recv, cb, 1, &arg, &result) != napi_ok) {
        // The callback threw: leave the exception pending so that it surfaces as uncaught,
        // as it would from any other callback. A terminating environment refuses it.
        bool pending = false;
        napi_value exc;
        if (napi_is_exception_pending(env, &pending) == napi_ok && pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_throw(env, exc);
      }
    }
    napi_close_handle_scope(env, scope);
  }

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
