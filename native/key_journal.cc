// Key journal: a durable append-only file of records.
//
// File format (also in docs/key-journal.md): a plain sequence of records, no file header.
//
//   offset 0  u32 LE  word: bits 0..30 the payload length, 1..kMaxRecord (0 is never
//                     written, so a zero-filled tail, as some filesystems leave after a
//                     crash, ends the journal instead of reading as empty records); bit 31
//                     set on a continuation record, one that is not the first of its
//                     commit group (the records written and synced together)
//   offset 4  u32 LE  CRC-32C of the payload (plain record), or of the word's four bytes
//                     then the payload (continuation record), so the flag cannot flip
//                     unnoticed
//   offset 8  length bytes of payload
//
// Recovery tells a torn tail from mid-log corruption. After a record that fails its
// checks it looks byte by byte for the next valid record. A group is written only after
// the one before it is synced, so only the last group can be torn, and every record
// after damage in it is a continuation: damage followed by continuations only is a torn
// tail, none of it acknowledged, and is cut off (the cut synced). Damage followed by a
// plain record means a later group was synced after it: the damaged records had been
// acknowledged. Open then refuses with ECORRUPT, naming the offset and the valid records
// after it, and changes nothing on disk; the facade's salvage option takes it from there.
//
// Durability: an append resolves only after the bytes and the file size are on stable
// storage (fdatasync). The file is grown ahead of the records in zero-filled steps of
// kPreallocStep, synced with the batch that needed them: a later fdatasync then flushes
// data only, with no size change to commit, which is what makes it cheap (about twice
// as fast on ext4). Zeros read as "no record" (length 0 is never valid), so the
// preallocated tail ends the journal at recovery; close() trims it. Appends queued while
// a write+sync is running are written together by the next one and share its fdatasync
// (group commit). Only one worker touches the file at a time, and every operation (open,
// append batch, compact, readAll, close) runs in the order it was requested, so no
// locking is needed. Open syncs the journal's directory (the file may be new) and that
// directory's parent (the directory may be new) before the first append can run.
//
// Two other ways, chosen per journal (new KeyJournal(path, { writer, sync })), for the
// benchmark that weighs them against the default: sync: 'dsync' writes a batch that
// stays inside the preallocated space with pwritev2(RWF_DSYNC), one syscall that returns
// once the bytes are durable (the same guarantee; a batch that grows the file, or a
// kernel or filesystem that refuses the flag, takes pwrite + fdatasync, the latter for
// good); writer: 'thread' runs the jobs on a thread the journal owns (started at the
// first operation, stopped after close), woken through a condition variable and
// answering through uv_async_send, instead of a libuv threadpool job. The thread costs
// about a quarter of the threadpool's round trip when the sync is free (tmpfs) but ran
// at about half its rate on a disk other processes were using; RWF_DSYNC measured no different
// from fdatasync. See docs/key-journal.md.
//
// Compaction writes a snapshot to `<path>.compact`, syncs it, renames it over the
// journal and syncs the directory: after a crash the journal is either wholly the old
// file or wholly the snapshot. A leftover `<path>.compact` is removed at open.
//
// After a failed write or sync the journal refuses further appends: the kernel may have
// dropped the dirty pages, so what is on disk is unknown until the file is reopened and
// recovered.
#include <fcntl.h>
#include <napi.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "crc32c.h"
#include "errors.h"
#include "register.h"

namespace ptpvts {
namespace {

constexpr uint32_t kHeaderSize = 8;
constexpr uint32_t kMaxRecord = 64u << 20;
constexpr uint64_t kPreallocStep = 1u << 20;
constexpr uint32_t kContinuation = 0x80000000u;

using Bytes = std::vector<uint8_t>;

std::string DirectoryOf(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool WriteAll(int fd, const uint8_t* p, size_t n, off_t offset, OsFailure& fail, const std::string& path) {
  while (n > 0) {
    const ssize_t w = pwrite(fd, p, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail.set(errno, "write", path);
      return false;
    }
    // pwrite of a regular file never returns 0 for n > 0 unless nothing can be written;
    // looping on it would spin forever.
    if (w == 0) {
      fail.set(EIO, "write", path);
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return true;
}

// How a batch is made durable: pwrite then fdatasync, or pwritev2 with RWF_DSYNC (one
// syscall that returns once the bytes are on stable storage, the same guarantee).
enum class SyncMode { kFdatasync, kDsync };

enum class DsyncResult { kDone, kFailed, kUnsupported };

// Writes with RWF_DSYNC: each part the kernel accepts is durable when the call returns.
// kUnsupported (kernel or filesystem without the flag) means nothing was written.
DsyncResult WriteAllDsync(int fd, const uint8_t* p, size_t n, off_t offset, OsFailure& fail, const std::string& path) {
  bool first = true;
  while (n > 0) {
    struct iovec iov = {const_cast<uint8_t*>(p), n};
    const ssize_t w = pwritev2(fd, &iov, 1, offset, RWF_DSYNC);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (first && (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)) return DsyncResult::kUnsupported;
      fail.set(errno, "pwritev2", path);
      return DsyncResult::kFailed;
    }
    if (w == 0) {
      fail.set(EIO, "pwritev2", path);
      return DsyncResult::kFailed;
    }
    first = false;
    p += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return DsyncResult::kDone;
}

bool ReadAll(int fd, uint8_t* p, size_t n, OsFailure& fail, const std::string& path) {
  off_t offset = 0;
  while (n > 0) {
    const ssize_t r = pread(fd, p, n, offset);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail.set(errno, "read", path);
      return false;
    }
    if (r == 0) break;  // shrank under us; the scan treats the rest as torn
    p += r;
    n -= static_cast<size_t>(r);
    offset += r;
  }
  return true;
}

bool SyncDir(const std::string& dir, OsFailure& fail) {
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    fail.set(errno, "open", dir);
    return false;
  }
  bool ok = true;
  if (fsync(dfd) != 0) {
    fail.set(errno, "fsync", dir);
    ok = false;
  }
  close(dfd);
  return ok;
}

bool SyncDirectory(const std::string& path, OsFailure& fail) { return SyncDir(DirectoryOf(path), fail); }

void AppendFramed(Bytes& out, const uint8_t* payload, uint32_t len, bool continuation) {
  const uint32_t word = len | (continuation ? kContinuation : 0);
  uint8_t header[kHeaderSize];
  std::memcpy(header, &word, 4);
  const uint32_t crc = continuation ? Crc32c(Crc32c(0, header, 4), payload, len) : Crc32c(0, payload, len);
  std::memcpy(header + 4, &crc, 4);
  out.insert(out.end(), header, header + kHeaderSize);
  out.insert(out.end(), payload, payload + len);
}

// Length of the whole, intact record at `off`, or 0; *continuation gets its flag.
uint32_t RecordAt(const Bytes& data, size_t off, bool* continuation) {
  if (data.size() - off < kHeaderSize) return 0;
  uint32_t word, crc;
  std::memcpy(&word, data.data() + off, 4);
  std::memcpy(&crc, data.data() + off + 4, 4);
  const uint32_t len = word & ~kContinuation;
  if (len == 0 || len > kMaxRecord || data.size() - off - kHeaderSize < len) return 0;
  const uint8_t* payload = data.data() + off + kHeaderSize;
  const bool cont = (word & kContinuation) != 0;
  const uint32_t want = cont ? Crc32c(Crc32c(0, data.data() + off, 4), payload, len) : Crc32c(0, payload, len);
  if (want != crc) return 0;
  if (continuation != nullptr) *continuation = cont;
  return len;
}

// Splits `data` into records up to the first bad one; returns the length of that prefix.
size_t ScanPrefix(const Bytes& data, std::vector<Bytes>* records) {
  size_t off = 0;
  for (uint32_t len; off < data.size() && (len = RecordAt(data, off, nullptr)) != 0; off += kHeaderSize + len) {
    if (records != nullptr) records->emplace_back(data.data() + off + kHeaderSize, data.data() + off + kHeaderSize + len);
  }
  return off;
}

struct Damage {
  uint64_t offset, length, firstLostSeq;
  int64_t lostRecords;  // -1: the length fields do not chain across the damage
};

struct Recovery {
  std::vector<Bytes> records;   // every record kept, in file order
  uint64_t keep = 0;            // where the torn tail starts
  uint64_t torn = 0;            // nonzero bytes in the torn tail
  std::vector<Damage> damage;   // mid-log damage; empty when the journal opens normally
  uint64_t recordsAfter = 0;    // records kept after the first damage
};

int64_t ChainedCount(const Bytes& data, size_t from, size_t to) {
  int64_t n = 0;
  size_t p = from;
  while (p + kHeaderSize <= to) {
    uint32_t word;
    std::memcpy(&word, data.data() + p, 4);
    const uint32_t len = word & ~kContinuation;
    if (len == 0 || len > kMaxRecord) return -1;
    p += kHeaderSize + len;
    ++n;
  }
  return p == to && n > 0 ? n : -1;
}

// The same reading as scanJournal in src/hotpath/journal-format.ts (see the top of this file).
Recovery Recover(const Bytes& data) {
  struct Item {
    bool bad, continuation;
    size_t off, end;
  };
  std::vector<Item> items;
  size_t off = 0;
  while (off < data.size()) {
    bool cont = false;
    const uint32_t len = RecordAt(data, off, &cont);
    if (len != 0) {
      items.push_back({false, cont, off, off + kHeaderSize + len});
      off += kHeaderSize + len;
      continue;
    }
    size_t p = off + 1;
    while (p + kHeaderSize <= data.size() && RecordAt(data, p, nullptr) == 0) ++p;
    const size_t end = p + kHeaderSize <= data.size() ? p : data.size();
    items.push_back({true, false, off, end});
    off = end;
  }
  size_t torn = items.size();
  for (size_t i = items.size(); i > 0; --i) {
    const Item& it = items[i - 1];
    if (!it.bad && !it.continuation) break;
    if (it.bad) torn = i - 1;
  }
  Recovery r;
  for (size_t i = 0; i < torn; ++i) {
    const Item& it = items[i];
    if (it.bad) {
      r.damage.push_back({it.off, it.end - it.off, r.records.size(), ChainedCount(data, it.off, it.end)});
    } else {
      r.records.emplace_back(data.data() + it.off + kHeaderSize, data.data() + it.end);
      if (!r.damage.empty()) ++r.recordsAfter;
    }
  }
  r.keep = torn == 0 ? 0 : items[torn - 1].end;
  for (size_t i = data.size(); i > r.keep; --i) {
    if (data[i - 1] != 0) {
      r.torn = i - r.keep;
      break;
    }
  }
  return r;
}

enum class OpKind { kOpen, kAppend, kCompact, kReadAll, kClose };

struct Op {
  OpKind kind;
  Napi::Promise::Deferred deferred;
  std::vector<Bytes> records;    // kAppend (one or more, written in order), kCompact
  uint64_t offset = 0, seq = 0;  // kAppend: of the first record, fixed at dispatch
};

class KeyJournal;

// Everything a worker thread reads or writes lives here; the journal object itself is
// only touched on the main thread.
class Job {
 public:
  Job(std::vector<Op> ops, std::string path, int fd, uint64_t tail, uint64_t allocated, bool trim, SyncMode sync)
      : ops_(std::move(ops)), path_(std::move(path)), fd_(fd), tail_(tail), allocated_(allocated), trim_(trim), sync_(sync) {}

  void Execute() {
    // Exceptions must not escape a worker thread; the only one possible here is running
    // out of memory for a batch or a recovery buffer.
    try {
      Run();
    } catch (const std::bad_alloc&) {
      fail_.set(ENOMEM, "malloc", path_);
    }
  }

  void Run() {
    switch (ops_.front().kind) {
      case OpKind::kOpen: Open(); break;
      case OpKind::kAppend: AppendBatch(); break;
      case OpKind::kCompact: Compact(); break;
      case OpKind::kReadAll: ReadRecords(); break;
      case OpKind::kClose:
        // Trimming the preallocated zeros is tidiness, not durability: if it is lost,
        // recovery stops at the zeros anyway.
        if (fd_ >= 0 && trim_ && allocated_ > tail_ && ftruncate(fd_, static_cast<off_t>(tail_)) != 0) {
          fail_.set(errno, "ftruncate", path_);
        }
        // A second close() finds the descriptor already gone.
        if (fd_ >= 0 && close(fd_) != 0 && errno != EINTR) fail_.set(errno, "close", path_);
        fd_ = -1;
        break;
    }
  }

  std::vector<Op> ops_;
  std::string path_;
  int fd_;
  uint64_t tail_;
  uint64_t allocated_;  // file size: tail_ plus preallocated zeros
  bool trim_;
  SyncMode sync_;
  bool dsyncUnsupported_ = false;  // RWF_DSYNC was refused; this batch used fdatasync
  OsFailure fail_;
  std::vector<Bytes> records_;
  uint64_t truncated_ = 0;
  std::vector<Damage> damage_;  // kOpen: mid-log damage found; the open is refused
  uint64_t recordsAfter_ = 0;
  bool renamed_ = false;

 private:
  void Open() {
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      fail_.set(errno, "open", path_);
      return;
    }
    struct stat st;
    if (fstat(fd_, &st) != 0) {
      fail_.set(errno, "fstat", path_);
      return;
    }
    Bytes data(static_cast<size_t>(st.st_size));
    if (!ReadAll(fd_, data.data(), data.size(), fail_, path_)) return;
    Recovery r = Recover(data);
    if (!r.damage.empty()) {
      // Acknowledged records are damaged: touch nothing, so the salvage (or an operator)
      // starts from the file exactly as it was.
      damage_ = std::move(r.damage);
      recordsAfter_ = r.recordsAfter;
      records_ = std::move(r.records);
      return;
    }
    records_ = std::move(r.records);
    tail_ = r.keep;
    truncated_ = r.torn;  // torn bytes, not the zeros of an untrimmed preallocation
    allocated_ = tail_;
    if (data.size() > tail_) {
      if (ftruncate(fd_, static_cast<off_t>(tail_)) != 0) return fail_.set(errno, "ftruncate", path_);
      if (fdatasync(fd_) != 0) return fail_.set(errno, "fdatasync", path_);
    }
    const std::string leftover = path_ + ".compact";
    if (unlink(leftover.c_str()) != 0 && errno != ENOENT) return fail_.set(errno, "unlink", leftover);
    // The journal's own directory entry may be new (O_CREAT), and so may the directory's
    // entry in its parent: both must be durable before an append is acknowledged.
    const std::string dir = DirectoryOf(path_);
    if (!SyncDir(dir, fail_)) return;
    SyncDir(dir == "." ? std::string("..") : DirectoryOf(dir), fail_);
  }

  void AppendBatch() {
    Bytes buf;
    size_t total = 0;
    for (const Op& op : ops_)
      for (const Bytes& r : op.records) total += kHeaderSize + r.size();
    buf.reserve(total);
    // The first record of the group is plain, the rest continue it: recovery tells a torn
    // group (damage followed by continuations only) from acknowledged records by this.
    bool first = true;
    for (const Op& op : ops_) {
      for (const Bytes& r : op.records) {
        AppendFramed(buf, r.data(), static_cast<uint32_t>(r.size()), !first);
        first = false;
      }
    }
    const uint64_t end = tail_ + buf.size();
    // A batch that grows the file takes the fdatasync path: its zeros and the new size are
    // committed by one sync.
    if (sync_ == SyncMode::kDsync && end <= allocated_) {
      switch (WriteAllDsync(fd_, buf.data(), buf.size(), static_cast<off_t>(tail_), fail_, path_)) {
        case DsyncResult::kDone: return;
        case DsyncResult::kFailed: return;
        case DsyncResult::kUnsupported: dsyncUnsupported_ = true; break;
      }
    }
    if (!WriteAll(fd_, buf.data(), buf.size(), static_cast<off_t>(tail_), fail_, path_)) return;
    if (end > allocated_) {
      const uint64_t grown = (end / kPreallocStep + 1) * kPreallocStep;
      const Bytes zeros(static_cast<size_t>(grown - end), 0);
      if (!WriteAll(fd_, zeros.data(), zeros.size(), static_cast<off_t>(end), fail_, path_)) return;
      allocated_ = grown;
    }
    if (fdatasync(fd_) != 0) fail_.set(errno, "fdatasync", path_);
  }

  void Compact() {
    const std::string tmp = path_ + ".compact";
    const int nfd = open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (nfd < 0) return fail_.set(errno, "open", tmp);
    Bytes buf;
    // Plain records only: the snapshot is synced whole before it becomes the journal, so
    // any damage in it later is corruption, never a torn write.
    for (const Bytes& r : ops_.front().records) AppendFramed(buf, r.data(), static_cast<uint32_t>(r.size()), false);
    bool ok = WriteAll(nfd, buf.data(), buf.size(), 0, fail_, tmp);
    if (ok && fdatasync(nfd) != 0) {
      fail_.set(errno, "fdatasync", tmp);
      ok = false;
    }
    if (ok && rename(tmp.c_str(), path_.c_str()) != 0) {
      fail_.set(errno, "rename", tmp);
      ok = false;
    }
    if (!ok) {
      // The old journal is untouched and stays in use.
      close(nfd);
      unlink(tmp.c_str());
      renamed_ = false;
      return;
    }
    renamed_ = true;
    close(fd_);
    fd_ = nfd;
    tail_ = buf.size();
    allocated_ = buf.size();
    SyncDirectory(path_, fail_);
  }

  void ReadRecords() {
    Bytes data(static_cast<size_t>(tail_));
    if (!ReadAll(fd_, data.data(), data.size(), fail_, path_)) return;
    if (ScanPrefix(data, &records_) != data.size()) fail_.set(EIO, "read", path_);
  }
};

// The libuv threadpool runs a job; completion comes back through N-API's async work.
class PoolTask : public Napi::AsyncWorker {
 public:
  PoolTask(Napi::Env env, KeyJournal* owner, std::unique_ptr<Job> job)
      : Napi::AsyncWorker(env, "ptpvts.KeyJournal"), owner_(owner), job_(std::move(job)) {}
  void Execute() override { job_->Execute(); }
  void OnOK() override;
  void OnError(const Napi::Error&) override { OnOK(); }  // never SetError: failures travel in fail_

 private:
  KeyJournal* owner_;
  std::unique_ptr<Job> job_;
};

// A thread owned by one journal that runs its jobs, one at a time: the main thread hands
// a job over through a mutex and condition variable and is told of its completion by
// uv_async_send, with no threadpool queue, no per-job N-API async work and no other
// work competing for the thread.
class WriterThread {
 public:
  WriterThread(Napi::Env env, KeyJournal* owner, bool spin) : env_(env), owner_(owner), context_(env, "ptpvts.KeyJournal"), spin_(spin) {
    async_ = new uv_async_t;
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_async_init(loop, async_, &WriterThread::OnAsync) != 0) {
      delete async_;
      async_ = nullptr;
      throw Napi::Error::New(env, "KeyJournal: cannot set up the writer thread's completion handle");
    }
    async_->data = this;
    if (spin_) {
      // An idle handle, active only while a job is in flight, keeps the loop polling with a
      // zero timeout, so the completion is picked up without the main thread sleeping and
      // being woken.
      idle_ = new uv_idle_t;
      uv_idle_init(loop, idle_);
      uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
    }
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));  // only a job in flight keeps the loop alive
    try {
      thread_ = std::thread([this] { Loop(); });
    } catch (const std::system_error& e) {
      uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      async_ = nullptr;
      throw Napi::Error::New(env, std::string("KeyJournal: cannot start the writer thread: ") + e.what());
    }
    napi_add_env_cleanup_hook(env, &WriterThread::Cleanup, this);
  }

  ~WriterThread() {
    napi_remove_env_cleanup_hook(env_, &WriterThread::Cleanup, this);
    Stop();
  }

  void Submit(std::unique_ptr<Job> job) {
    uv_ref(reinterpret_cast<uv_handle_t*>(async_));
    if (idle_ != nullptr) uv_idle_start(idle_, [](uv_idle_t*) {});
    bool sleeping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      todo_ = std::move(job);
      pending_.store(true, std::memory_order_release);
      sleeping = sleeping_;
    }
    // A spinning thread sees pending_ without a wake-up.
    if (sleeping) cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::unique_ptr<Job> job;
      if (spin_) {
        // Poll for the next job a little while before sleeping: a writer that appends
        // again as soon as its last append is answered hands over without a futex wake.
        const auto until = std::chrono::steady_clock::now() + kSpin;
        while (!pending_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        }
      }
      {
        std::unique_lock<std::mutex> lock(mu_);
        sleeping_ = true;
        cv_.wait(lock, [this] { return stop_ || todo_ != nullptr; });
        sleeping_ = false;
        if (todo_ == nullptr) return;  // stopping, nothing left to run
        job = std::move(todo_);
        pending_.store(false, std::memory_order_relaxed);
      }
      job->Execute();
      {
        std::lock_guard<std::mutex> lock(mu_);
        done_ = std::move(job);
      }
      uv_async_send(async_);
    }
  }

  static void OnAsync(uv_async_t* handle);

  // Joins the thread (a job it is running finishes first) and closes the handle; a job
  // completed but not yet delivered is dropped with its promises, which only happens when
  // the environment is going away.
  void Stop() {
    if (async_ == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    async_ = nullptr;
    if (idle_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(idle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
      idle_ = nullptr;
    }
  }

  static void Cleanup(void* arg) { static_cast<WriterThread*>(arg)->Stop(); }

  Napi::Env env_;
  KeyJournal* owner_;
  Napi::AsyncContext context_;
  uv_async_t* async_ = nullptr;
  // poll: 'spin': how long the thread polls for the next job before it sleeps.
  static constexpr std::chrono::microseconds kSpin{200};
  const bool spin_;
  uv_idle_t* idle_ = nullptr;
  std::atomic<bool> pending_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Job> todo_, done_;
  bool stop_ = false;
  bool sleeping_ = false;
  std::thread thread_;
};

// Which thread runs a journal's jobs: the libuv threadpool or a thread of its own.
enum class WriterMode { kThreadpool, kThread };

class KeyJournal : public Napi::ObjectWrap<KeyJournal> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "KeyJournal",
                       {
                           InstanceMethod<&KeyJournal::OpenJs>("open"),
                           InstanceMethod<&KeyJournal::AppendJs>("append"),
                           InstanceMethod<&KeyJournal::StageJs>("stage"),
                           InstanceMethod<&KeyJournal::CommitJs>("commit"),
                           InstanceMethod<&KeyJournal::CompactJs>("compact"),
                           InstanceMethod<&KeyJournal::ReadAllJs>("readAll"),
                           InstanceMethod<&KeyJournal::CloseJs>("close"),
                           InstanceMethod<&KeyJournal::StatsJs>("stats"),
                       });
  }

  explicit KeyJournal(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KeyJournal>(info) {
    if (info.Length() < 1 || !info[0].IsString()) {
      throw Napi::TypeError::New(info.Env(), "new KeyJournal(path): path must be a string");
    }
    path_ = info[0].As<Napi::String>().Utf8Value();
    if (path_.empty()) throw Napi::TypeError::New(info.Env(), "new KeyJournal(path): path must not be empty");
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw Napi::TypeError::New(info.Env(), "new KeyJournal(path, options): options must be an object");
      Napi::Object o = info[1].As<Napi::Object>();
      Napi::Value w = o.Get("writer"), y = o.Get("sync"), pl = o.Get("poll");
      if (!pl.IsUndefined()) {
        const std::string v = pl.IsString() ? pl.As<Napi::String>().Utf8Value() : "";
        if (v == "block") spin_ = false;
        else if (v == "spin") spin_ = true;
        else throw Napi::TypeError::New(info.Env(), "new KeyJournal(path, options): options.poll must be 'block' or 'spin'");
      }
      if (!w.IsUndefined()) {
        const std::string v = w.IsString() ? w.As<Napi::String>().Utf8Value() : "";
        if (v == "threadpool") writerMode_ = WriterMode::kThreadpool;
        else if (v == "thread") writerMode_ = WriterMode::kThread;
        else throw Napi::TypeError::New(info.Env(), "new KeyJournal(path, options): options.writer must be 'threadpool' or 'thread'");
      }
      if (!y.IsUndefined()) {
        const std::string v = y.IsString() ? y.As<Napi::String>().Utf8Value() : "";
        if (v == "fdatasync") sync_ = SyncMode::kFdatasync;
        else if (v == "dsync") sync_ = SyncMode::kDsync;
        else throw Napi::TypeError::New(info.Env(), "new KeyJournal(path, options): options.sync must be 'fdatasync' or 'dsync'");
      }
    }
  }

  ~KeyJournal() override {
    writer_.reset();
    if (fd_ >= 0) close(fd_);
  }

  void Complete(Job& t) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    busy_ = false;
    const OpKind kind = t.ops_.front().kind;
    switch (kind) {
      case OpKind::kOpen:
        if (t.fail_.failed() || !t.damage_.empty()) {
          if (t.fd_ >= 0) close(t.fd_);
          opening_ = false;
          if (t.fail_.failed()) Reject(t.ops_.front(), t.fail_);
          else t.ops_.front().deferred.Reject(CorruptError(env, t).Value());
          break;
        }
        fd_ = t.fd_;
        tail_ = t.tail_;
        allocated_ = t.allocated_;
        nextSeq_ = t.records_.size();
        opened_ = true;
        t.ops_.front().deferred.Resolve(OpenResult(env, t));
        break;
      case OpKind::kAppend:
        if (t.fail_.failed()) {
          broken_ = t.fail_;
          for (Op& op : t.ops_) Reject(op, t.fail_);
          break;
        }
        ++syncs_;
        allocated_ = t.allocated_;
        if (t.dsyncUnsupported_) sync_ = SyncMode::kFdatasync;
        for (const Op& op : t.ops_) appends_ += op.records.size();
        for (Op& op : t.ops_) {
          Napi::Object r = Napi::Object::New(env);
          r.Set("offset", Napi::Number::New(env, static_cast<double>(op.offset)));
          r.Set("seq", Napi::Number::New(env, static_cast<double>(op.seq)));
          op.deferred.Resolve(r);
        }
        break;
      case OpKind::kCompact:
        if (t.renamed_) {
          fd_ = t.fd_;
          tail_ = t.tail_;
          allocated_ = t.allocated_;
          nextSeq_ = t.ops_.front().records.size();
        }
        if (t.fail_.failed()) {
          // Failing after the rename leaves the directory entry's durability unknown.
          if (t.renamed_) broken_ = t.fail_;
          Reject(t.ops_.front(), t.fail_);
        } else {
          t.ops_.front().deferred.Resolve(Napi::Number::New(env, static_cast<double>(tail_)));
        }
        break;
      case OpKind::kReadAll:
        if (t.fail_.failed()) {
          Reject(t.ops_.front(), t.fail_);
        } else {
          t.ops_.front().deferred.Resolve(RecordArray(env, t.records_));
        }
        break;
      case OpKind::kClose:
        fd_ = -1;
        closed_ = true;
        stopWriter_ = true;
        if (t.fail_.failed()) Reject(t.ops_.front(), t.fail_);
        else t.ops_.front().deferred.Resolve(env.Undefined());
        break;
    }
    Unref();
    Pump();
  }

  // After the close job: the writer thread (if any) is no longer needed. Not from inside
  // Complete, which runs on the writer's own completion callback.
  void ReleaseWriter() {
    if (stopWriter_ && !busy_) writer_.reset();
  }

 private:
  static Napi::Value RecordArray(Napi::Env env, const std::vector<Bytes>& records) {
    Napi::Array arr = Napi::Array::New(env, records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      arr.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, records[i].data(), records[i].size()));
    }
    return arr;
  }

  static Napi::Value OpenResult(Napi::Env env, const Job& t) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("records", RecordArray(env, t.records_));
    r.Set("validBytes", Napi::Number::New(env, static_cast<double>(t.tail_)));
    r.Set("truncatedBytes", Napi::Number::New(env, static_cast<double>(t.truncated_)));
    return r;
  }

  // Mid-log damage: the facade turns this into KeyJournalCorruptError.
  Napi::Error CorruptError(Napi::Env env, const Job& t) {
    const Damage& first = t.damage_.front();
    Napi::Error e = Napi::Error::New(env, "ECORRUPT: key journal '" + path_ + "' is corrupt at offset " + std::to_string(first.offset) + ", " +
                                              std::to_string(t.recordsAfter_) + " valid record(s) follow the damage");
    e.Set("code", Napi::String::New(env, "ECORRUPT"));
    e.Set("path", Napi::String::New(env, path_));
    e.Set("offset", Napi::Number::New(env, static_cast<double>(first.offset)));
    e.Set("recordsBefore", Napi::Number::New(env, static_cast<double>(first.firstLostSeq)));
    e.Set("recordsAfter", Napi::Number::New(env, static_cast<double>(t.recordsAfter_)));
    Napi::Array list = Napi::Array::New(env, t.damage_.size());
    for (size_t i = 0; i < t.damage_.size(); ++i) {
      const Damage& d = t.damage_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("offset", Napi::Number::New(env, static_cast<double>(d.offset)));
      o.Set("length", Napi::Number::New(env, static_cast<double>(d.length)));
      o.Set("firstLostSeq", Napi::Number::New(env, static_cast<double>(d.firstLostSeq)));
      o.Set("lostRecords", d.lostRecords < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(d.lostRecords)));
      list.Set(static_cast<uint32_t>(i), o);
    }
    e.Set("damage", list);
    return e;
  }

  static Napi::Error StateError(Napi::Env env, const char* code, const std::string& message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    return e;
  }

  void Reject(Op& op, const OsFailure& f) {
    op.deferred.Reject(ErrnoError(Env(), f.err, f.syscall, f.path).Value());
  }

  Napi::Value Enqueue(Napi::Env env, Op op) {
    Napi::Promise promise = op.deferred.Promise();
    queue_.push_back(std::move(op));
    Pump();
    return promise;
  }

  // Starts the next task if none is running: a maximal run of appends becomes one batch.
  void Pump() {
    while (!busy_ && !queue_.empty()) {
      Napi::Env env = Env();
      std::vector<Op> ops;
      ops.push_back(std::move(queue_.front()));
      queue_.pop_front();
      const OpKind kind = ops.front().kind;
      if (kind != OpKind::kOpen && kind != OpKind::kClose && !opened_) {
        ops.front().deferred.Reject(StateError(env, "ECLOSED", "KeyJournal: the journal did not open").Value());
        continue;
      }
      if ((kind == OpKind::kAppend || kind == OpKind::kCompact) && broken_.failed()) {
        ops.front().deferred.Reject(ErrnoError(env, broken_.err, broken_.syscall, broken_.path).Value());
        continue;
      }
      const uint64_t tail = tail_;
      if (kind == OpKind::kAppend) {
        while (!queue_.empty() && queue_.front().kind == OpKind::kAppend) {
          ops.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        // Positions are fixed now, when the order on disk is decided.
        for (Op& op : ops) {
          op.offset = tail_;
          op.seq = nextSeq_;
          for (const Bytes& r : op.records) tail_ += kHeaderSize + r.size();
          nextSeq_ += op.records.size();
        }
      }
      if (writerMode_ == WriterMode::kThread && !writer_) {
        // Without a thread of its own (the process is out of threads) the journal still
        // works, on the threadpool.
        try {
          writer_ = std::make_unique<WriterThread>(env, this, spin_);
        } catch (const Napi::Error&) {
          writerMode_ = WriterMode::kThreadpool;
        }
      }
      busy_ = true;
      Ref();
      auto job = std::make_unique<Job>(std::move(ops), path_, fd_, tail, allocated_, !broken_.failed(), sync_);
      if (writerMode_ == WriterMode::kThread) {
        writer_->Submit(std::move(job));
      } else {
        (new PoolTask(env, this, std::move(job)))->Queue();
      }
    }
  }

  Napi::Value OpenJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (opened_ || opening_ || closing_) throw StateError(env, "EINVAL", "KeyJournal.open: already opened");
    opening_ = true;
    return Enqueue(env, Op{OpKind::kOpen, Napi::Promise::Deferred::New(env), {}});
  }

  void RequireUsable(Napi::Env env, const char* what) {
    if (closing_ || closed_) throw StateError(env, "ECLOSED", std::string("KeyJournal.") + what + ": the journal is closed");
    if (!opening_ && !opened_) throw StateError(env, "EINVAL", std::string("KeyJournal.") + what + ": open() first");
  }

  static const uint8_t* Payload(const Napi::Value& v, size_t* len) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) return nullptr;
    auto u8 = v.As<Napi::Uint8Array>();
    *len = u8.ByteLength();
    return u8.Data();
  }

  static void CheckRecord(Napi::Env env, const char* what, const uint8_t* p, size_t len) {
    if (p == nullptr) throw Napi::TypeError::New(env, std::string("KeyJournal.") + what + ": a record must be a Uint8Array");
    if (len == 0 || len > kMaxRecord) {
      throw Napi::RangeError::New(env, std::string("KeyJournal.") + what + ": a record must be 1..67108864 bytes");
    }
  }

  // Copies one record into the staging area; nothing is written until commit().
  Napi::Value StageJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t len = 0;
    const uint8_t* p = info.Length() > 0 ? Payload(info[0], &len) : nullptr;
    CheckRecord(env, "stage", p, len);
    RequireUsable(env, "stage");
    staged_.emplace_back(p, p + len);
    return env.Undefined();
  }

  // Queues every staged record as one append; resolves with the first one's offset and
  // seq once all of them are durable (the rest follow contiguously), or null when
  // nothing was staged. Staging lets a caller gather the appends of one tick, which
  // would otherwise reach an idle journal one by one.
  Napi::Value CommitJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (staged_.empty()) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Null());
      return d.Promise();
    }
    std::vector<Bytes> records;
    records.swap(staged_);
    if (closing_ || closed_) throw StateError(env, "ECLOSED", "KeyJournal.commit: the journal is closed");
    return Enqueue(env, Op{OpKind::kAppend, Napi::Promise::Deferred::New(env), std::move(records)});
  }

  Napi::Value AppendJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t len = 0;
    const uint8_t* p = info.Length() > 0 ? Payload(info[0], &len) : nullptr;
    CheckRecord(env, "append", p, len);
    RequireUsable(env, "append");
    std::vector<Bytes> records;
    records.emplace_back(p, p + len);
    return Enqueue(env, Op{OpKind::kAppend, Napi::Promise::Deferred::New(env), std::move(records)});
  }

  Napi::Value CompactJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "KeyJournal.compact: records must be an array");
    RequireUsable(env, "compact");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<Bytes> records;
    records.reserve(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      size_t len = 0;
      Napi::Value v = arr.Get(i);
      const uint8_t* p = Payload(v, &len);
      CheckRecord(env, "compact", p, len);
      records.emplace_back(p, p + len);
    }
    return Enqueue(env, Op{OpKind::kCompact, Napi::Promise::Deferred::New(env), std::move(records)});
  }

  Napi::Value ReadAllJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireUsable(env, "readAll");
    return Enqueue(env, Op{OpKind::kReadAll, Napi::Promise::Deferred::New(env), {}});
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    closing_ = true;
    if (!opened_ && !opening_) closed_ = true;
    if (closed_ && queue_.empty() && !busy_) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    return Enqueue(env, Op{OpKind::kClose, Napi::Promise::Deferred::New(env), {}});
  }

  Napi::Value StatsJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("appends", Napi::Number::New(env, static_cast<double>(appends_)));
    o.Set("syncs", Napi::Number::New(env, static_cast<double>(syncs_)));
    o.Set("size", Napi::Number::New(env, static_cast<double>(tail_)));
    o.Set("nextSeq", Napi::Number::New(env, static_cast<double>(nextSeq_)));
    return o;
  }

  std::string path_;
  int fd_ = -1;
  uint64_t tail_ = 0;
  uint64_t allocated_ = 0;
  uint64_t nextSeq_ = 0;
  bool busy_ = false, opening_ = false, opened_ = false, closing_ = false, closed_ = false;
  OsFailure broken_;
  std::deque<Op> queue_;
  std::vector<Bytes> staged_;
  uint64_t appends_ = 0, syncs_ = 0;
  // Defaults: neither alternative paid on a shared disk (bench/journal.bench.ts measures
  // all four side by side; figures in docs/key-journal.md).
  SyncMode sync_ = SyncMode::kFdatasync;
  WriterMode writerMode_ = WriterMode::kThreadpool;
  bool spin_ = false;
  std::unique_ptr<WriterThread> writer_;
  bool stopWriter_ = false;
};

void PoolTask::OnOK() { owner_->Complete(*job_); }

void WriterThread::OnAsync(uv_async_t* handle) {
  auto* self = static_cast<WriterThread*>(handle->data);
  std::unique_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    job = std::move(self->done_);
  }
  if (job == nullptr) return;  // uv_async_send calls may coalesce
  uv_unref(reinterpret_cast<uv_handle_t*>(handle));
  if (self->idle_ != nullptr) uv_idle_stop(self->idle_);
  KeyJournal* owner = self->owner_;
  {
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    // Resolving inside a callback scope runs the promise reactions (microtasks) when it closes.
    Napi::CallbackScope callback(env, self->context_);
    try {
      owner->Complete(*job);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }
  job.reset();
  owner->ReleaseWriter();  // may delete self
}

}  // namespace

void RegisterKeyJournal(Napi::Env env, Napi::Object exports) { exports.Set("KeyJournal", KeyJournal::Define(env)); }

}  // namespace ptpvts
