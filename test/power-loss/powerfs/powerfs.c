/*
 * powerfs: a pass-through FUSE filesystem that models what a power cut loses.
 *
 * Writes reach the backing file at once, so reads need no merging; what is volatile is kept as
 * an undo log beside it. Per inode: for every data change since that inode's last
 * fsync/fdatasync, the bytes it overwrote and the size before. Per directory operation: enough
 * to revert it until every directory it touched has been fsynced. A file removed or replaced by
 * a volatile operation is parked in <state>/trash (outside the served tree) until that operation
 * is durable, so a cut can bring it back.
 *
 * A cut materialises "the backing tree with the volatile layer reverted" (drop everything, a
 * seeded subset of 4 KiB pages, or a seeded prefix in global order), either into a fresh
 * directory (snapshot, the live mount is untouched) or in place of the served tree (cut; then
 * every operation fails with EIO until the harness remounts).
 *
 * Usage: powerfs --state DIR --ctl SOCKET [--parent PID] [--direct-io] MOUNTPOINT
 * The served tree is DIR/root. Control protocol (one line each way, over SOCKET):
 *   snapshot DEST MODE SEED | cut MODE SEED | stats | fail OPS ERRNO | fail off | ping
 *   (OPS: comma-separated read, write, fsync, meta, link, all; link fails only link()).
 * answered by "ok JSON" or "err ERRNO MESSAGE".
 */
#define FUSE_USE_VERSION 35
#define _GNU_SOURCE
#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

/* ------------------------------------------------------------------ state */

/* Whatever a data change overwrote: applying these in reverse order restores the synced file. */
struct undo {
  uint64_t seq;
  off_t lo, hi;     /* byte range the change touched (pages mode picks pages from it) */
  off_t old_off;    /* where `old` came from */
  size_t oldn;
  unsigned char *old;
  off_t old_size;
  off_t shrink_to;  /* a truncate that shrank the file: its new size; -1 otherwise */
  size_t bytes;     /* bytes the caller asked to change, for the report */
};

struct flog {
  ino_t ino;
  struct undo *v;
  size_t n, cap;
  struct flog *next;
};

enum { OP_CREATE, OP_REMOVE, OP_RENAME, OP_EXCHANGE };

/* A directory operation not yet durable. Directories are named by inode, so a later rename of
 * a parent does not invalidate the record. */
struct dop {
  uint64_t seq;
  int type;
  ino_t d1, d2;      /* parent(s) */
  char *n1, *n2;     /* names in d1, d2 */
  ino_t x, y;        /* node moved/created/removed; node displaced (rename over) or exchanged */
  char *trash;       /* trash path of the removed/displaced node, if any */
  struct dop *next;
};

struct dsync {
  ino_t ino;
  uint64_t seq;
  struct dsync *next;
};

#define NBUCKET 4096
static struct flog *g_flogs[NBUCKET];
static struct dsync *g_dsync[NBUCKET];
static struct dop *g_dops_head, *g_dops_tail;
static size_t g_ndops;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_seq = 1;
static char g_state[PATH_MAX], g_root[PATH_MAX], g_trash[PATH_MAX], g_ctl[PATH_MAX], g_mnt[PATH_MAX];
static int g_direct_io;
static pid_t g_parent;
static int g_off;               /* set by a cut: the power is off until the harness remounts */
static int g_fail_mask, g_fail_errno;
static uint64_t g_nsnap, g_ncut, g_nwrites, g_nsyncs, g_ndirsyncs;

/* F_LINK fails link() alone (it is in F_META too): it stands in for a filesystem without hard
 * links (EPERM, ENOTSUP), so callers' copy fallbacks run under cuts. */
enum { F_READ = 1, F_WRITE = 2, F_FSYNC = 4, F_META = 8, F_LINK = 16 };

static unsigned bucket(ino_t ino) { return (unsigned)((ino * 0x9E3779B97F4A7C15ull) >> 52) % NBUCKET; }

static struct flog *flog_get(ino_t ino, int create) {
  unsigned b = bucket(ino);
  for (struct flog *f = g_flogs[b]; f; f = f->next)
    if (f->ino == ino) return f;
  if (!create) return NULL;
  struct flog *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->ino = ino;
  f->next = g_flogs[b];
  g_flogs[b] = f;
  return f;
}

static void flog_clear(struct flog *f) {
  for (size_t i = 0; i < f->n; i++) free(f->v[i].old);
  f->n = 0;
}

static void flog_forget(ino_t ino) {
  struct flog *f = flog_get(ino, 0);
  if (f) flog_clear(f);
}

static uint64_t dsync_get(ino_t ino) {
  for (struct dsync *d = g_dsync[bucket(ino)]; d; d = d->next)
    if (d->ino == ino) return d->seq;
  return 0;
}

static void dsync_set(ino_t ino, uint64_t seq) {
  unsigned b = bucket(ino);
  for (struct dsync *d = g_dsync[b]; d; d = d->next)
    if (d->ino == ino) { d->seq = seq; return; }
  struct dsync *d = calloc(1, sizeof *d);
  if (!d) return;
  d->ino = ino;
  d->seq = seq;
  d->next = g_dsync[b];
  g_dsync[b] = d;
}

/* ------------------------------------------------------------------ helpers */

static int bpath(char *out, const char *path) {
  if (!path) return -EINVAL;
  int n = snprintf(out, PATH_MAX, "%s%s", g_root, path);
  return n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Parent inode and last component of a FUSE path. */
static int parent_of(const char *path, ino_t *dino, const char **name) {
  const char *slash = strrchr(path, '/');
  if (!slash) return -EINVAL;
  char dir[PATH_MAX];
  size_t len = (size_t)(slash - path);
  int n = snprintf(dir, sizeof dir, "%s%.*s", g_root, (int)len, path);
  if (n >= (int)sizeof dir) return -ENAMETOOLONG;
  struct stat st;
  if (lstat(dir, &st) != 0) return -errno;
  *dino = st.st_ino;
  *name = slash + 1;
  return 0;
}

static int fail_for(int what) {
  if (g_off) return -EIO;
  if (g_fail_mask & what) return -g_fail_errno;
  return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)ftw;
  if (flag == FTW_DP) rmdir(p);
  else unlink(p);
  return 0;
}

static void rm_rf(const char *p) { nftw(p, rm_cb, 32, FTW_DEPTH | FTW_PHYS); }

static char *trash_name(uint64_t seq) {
  char *p = malloc(PATH_MAX);
  if (p) snprintf(p, PATH_MAX, "%s/%" PRIu64, g_trash, seq);
  return p;
}

/* ------------------------------------------------------------------ logging */

static int log_change(int fd, ino_t ino, off_t lo, off_t hi, off_t save_lo, off_t save_hi, size_t bytes) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  struct flog *f = flog_get(ino, 1);
  if (!f) return -ENOMEM;
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 16;
    struct undo *v = realloc(f->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    f->v = v;
    f->cap = cap;
  }
  struct undo *u = &f->v[f->n];
  memset(u, 0, sizeof *u);
  u->seq = g_seq++;
  u->lo = lo;
  u->hi = hi;
  u->old_size = st.st_size;
  u->shrink_to = -1;
  u->bytes = bytes;
  if (save_hi > st.st_size) save_hi = st.st_size;
  if (save_lo < save_hi) {
    u->oldn = (size_t)(save_hi - save_lo);
    u->old_off = save_lo;
    u->old = malloc(u->oldn);
    if (!u->old) return -ENOMEM;
    size_t got = 0;
    while (got < u->oldn) {
      ssize_t r = pread(fd, u->old + got, u->oldn - got, save_lo + (off_t)got);
      if (r < 0) { int e = errno; free(u->old); return -e; }
      if (r == 0) break;
      got += (size_t)r;
    }
    u->oldn = got;
  }
  f->n++;
  return 0;
}

static void dop_add(struct dop *d) {
  d->seq = g_seq++;
  d->next = NULL;
  if (g_dops_tail) g_dops_tail->next = d; else g_dops_head = d;
  g_dops_tail = d;
  g_ndops++;
}

static int dop_durable(const struct dop *d) {
  if (dsync_get(d->d1) <= d->seq) return 0;
  if ((d->type == OP_RENAME || d->type == OP_EXCHANGE) && dsync_get(d->d2) <= d->seq) return 0;
  return 1;
}

static void dop_free(struct dop *d) {
  free(d->n1);
  free(d->n2);
  free(d->trash);
  free(d);
}

/* Drops the records a directory fsync made durable, and what they parked in the trash. */
static void dops_prune(void) {
  struct dop **pp = &g_dops_head, *prev = NULL;
  while (*pp) {
    struct dop *d = *pp;
    if (dop_durable(d)) {
      if (d->trash) {
        struct stat st;
        if (lstat(d->trash, &st) == 0) {
          if (!S_ISDIR(st.st_mode) && st.st_nlink <= 1) flog_forget(st.st_ino);
          if (S_ISDIR(st.st_mode)) rm_rf(d->trash); else unlink(d->trash);
        }
      }
      *pp = d->next;
      if (g_dops_tail == d) g_dops_tail = prev;
      g_ndops--;
      dop_free(d);
    } else {
      prev = d;
      pp = &d->next;
    }
  }
}

/* ------------------------------------------------------------------ FUSE ops */

struct fh {
  int fd;
  ino_t ino;
};

#define LOCK() pthread_mutex_lock(&g_lock)
#define UNLOCK() pthread_mutex_unlock(&g_lock)

static void *pf_init(struct fuse_conn_info *conn, struct fuse_config *cfg);

static int pf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  LOCK();
  int r = fail_for(F_META);
  if (!r) {
    if (fi) r = fstat(((struct fh *)(uintptr_t)fi->fh)->fd, st) ? -errno : 0;
    else {
      char p[PATH_MAX];
      r = bpath(p, path);
      if (!r) r = lstat(p, st) ? -errno : 0;
    }
  }
  UNLOCK();
  return r;
}

static int pf_access(const char *path, int mask) {
  LOCK();
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (!r) r = access(p, mask) ? -errno : 0;
  UNLOCK();
  return r;
}

static int pf_readlink(const char *path, char *buf, size_t size) {
  LOCK();
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (!r) {
    ssize_t n = readlink(p, buf, size - 1);
    if (n < 0) r = -errno; else buf[n] = 0;
  }
  UNLOCK();
  return r;
}

struct dh {
  DIR *dir;
  ino_t ino;
};

static int pf_opendir(const char *path, struct fuse_file_info *fi) {
  LOCK();
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (!r) {
    struct dh *d = calloc(1, sizeof *d);
    if (!d) r = -ENOMEM;
    else if (!(d->dir = opendir(p))) { r = -errno; free(d); }
    else {
      struct stat st;
      if (fstat(dirfd(d->dir), &st) == 0) d->ino = st.st_ino;
      fi->fh = (uintptr_t)d;
    }
  }
  UNLOCK();
  return r;
}

static int pf_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)path; (void)off; (void)flags;
  LOCK();
  struct dh *d = (struct dh *)(uintptr_t)fi->fh;
  int r = fail_for(F_META);
  if (!r) {
    rewinddir(d->dir);
    struct dirent *e;
    while ((e = readdir(d->dir))) {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = e->d_ino;
      st.st_mode = (mode_t)DTTOIF(e->d_type);
      if (filler(buf, e->d_name, &st, 0, 0)) break;
    }
  }
  UNLOCK();
  return r;
}

static int pf_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  struct dh *d = (struct dh *)(uintptr_t)fi->fh;
  closedir(d->dir);
  free(d);
  return 0;
}

static int pf_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path; (void)datasync;
  LOCK();
  int r = fail_for(F_FSYNC);
  if (!r) {
    struct dh *d = (struct dh *)(uintptr_t)fi->fh;
    dsync_set(d->ino, g_seq++);
    g_ndirsyncs++;
    dops_prune();
  }
  UNLOCK();
  return r;
}

/* Logs the creation of the node now at `path` in its parent. A new inode starts with no history. */
static int log_create(const char *path, int fresh) {
  ino_t dino;
  const char *name;
  int r = parent_of(path, &dino, &name);
  if (r) return r;
  char p[PATH_MAX];
  if ((r = bpath(p, path))) return r;
  struct stat st;
  if (lstat(p, &st) != 0) return -errno;
  if (fresh) flog_forget(st.st_ino);
  struct dop *d = calloc(1, sizeof *d);
  if (!d) return -ENOMEM;
  d->type = OP_CREATE;
  d->d1 = dino;
  d->n1 = strdup(name);
  d->x = st.st_ino;
  dop_add(d);
  return 0;
}

static int pf_mkdir(const char *path, mode_t mode) {
  LOCK();
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (!r) r = mkdir(p, mode) ? -errno : 0;
  if (!r) r = log_create(path, 1);
  UNLOCK();
  return r;
}

static int pf_mknod(const char *path, mode_t mode, dev_t rdev) {
  LOCK();
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (!r) r = mknod(p, mode, rdev) ? -errno : 0;
  if (!r) r = log_create(path, 1);
  UNLOCK();
  return r;
}

static int pf_symlink(const char *target, const char *path) {
  LOCK();
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (!r) r = symlink(target, p) ? -errno : 0;
  if (!r) r = log_create(path, 1);
  UNLOCK();
  return r;
}

static int pf_link(const char *from, const char *to) {
  LOCK();
  char a[PATH_MAX], b[PATH_MAX];
  int r = fail_for(F_META | F_LINK);
  if (!r) r = bpath(a, from);
  if (!r) r = bpath(b, to);
  if (!r) r = link(a, b) ? -errno : 0;
  if (!r) r = log_create(to, 0);
  UNLOCK();
  return r;
}

static int dir_empty(const char *p) {
  DIR *d = opendir(p);
  if (!d) return -errno;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
  closedir(d);
  return empty;
}

/* unlink and rmdir park the node in the trash instead of deleting it. */
static int remove_node(const char *path, int want_dir) {
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (r) return r;
  struct stat st;
  if (lstat(p, &st) != 0) return -errno;
  if (want_dir && !S_ISDIR(st.st_mode)) return -ENOTDIR;
  if (!want_dir && S_ISDIR(st.st_mode)) return -EISDIR;
  if (want_dir) {
    int e = dir_empty(p);
    if (e < 0) return e;
    if (!e) return -ENOTEMPTY;
  }
  ino_t dino;
  const char *name;
  if ((r = parent_of(path, &dino, &name))) return r;
  struct dop *d = calloc(1, sizeof *d);
  if (!d) return -ENOMEM;
  uint64_t seq = g_seq;
  d->trash = trash_name(seq);
  if (!d->trash || rename(p, d->trash) != 0) {
    r = d->trash ? -errno : -ENOMEM;
    dop_free(d);
    return r;
  }
  d->type = OP_REMOVE;
  d->d1 = dino;
  d->n1 = strdup(name);
  d->x = st.st_ino;
  dop_add(d);
  return 0;
}

static int pf_unlink(const char *path) {
  LOCK();
  int r = remove_node(path, 0);
  UNLOCK();
  return r;
}

static int pf_rmdir(const char *path) {
  LOCK();
  int r = remove_node(path, 1);
  UNLOCK();
  return r;
}

static int do_rename(const char *from, const char *to, unsigned flags) {
  char a[PATH_MAX], b[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(a, from);
  if (!r) r = bpath(b, to);
  if (r) return r;
  if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) return -EINVAL;
  struct stat sa, sb;
  if (lstat(a, &sa) != 0) return -errno;
  int have_b = lstat(b, &sb) == 0;
  if (!have_b && errno != ENOENT) return -errno;
  ino_t d1, d2;
  const char *n1, *n2;
  if ((r = parent_of(from, &d1, &n1))) return r;
  if ((r = parent_of(to, &d2, &n2))) return r;
  struct dop *d = calloc(1, sizeof *d);
  if (!d) return -ENOMEM;
  d->d1 = d1;
  d->d2 = d2;
  d->n1 = strdup(n1);
  d->n2 = strdup(n2);
  d->x = sa.st_ino;
  if (flags & RENAME_EXCHANGE) {
    if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0) { r = -errno; dop_free(d); return r; }
    d->type = OP_EXCHANGE;
    d->y = sb.st_ino;
    dop_add(d);
    return 0;
  }
  if (have_b && (flags & RENAME_NOREPLACE)) { dop_free(d); return -EEXIST; }
  if (have_b && sb.st_ino == sa.st_ino) { dop_free(d); return 0; }  /* two links to one inode: a no-op */
  d->type = OP_RENAME;
  if (have_b) {
    /* The kernel checks most of this on its cached dentries; repeat it so a stale cache
     * cannot make us park a node and then fail the rename. */
    if (S_ISDIR(sb.st_mode)) {
      if (!S_ISDIR(sa.st_mode)) { dop_free(d); return -EISDIR; }
      int e = dir_empty(b);
      if (e <= 0) { dop_free(d); return e < 0 ? e : -ENOTEMPTY; }
    } else if (S_ISDIR(sa.st_mode)) {
      dop_free(d);
      return -ENOTDIR;
    }
    d->trash = trash_name(g_seq);
    if (!d->trash || rename(b, d->trash) != 0) { r = d->trash ? -errno : -ENOMEM; dop_free(d); return r; }
    if (rename(a, b) != 0) {
      r = -errno;
      rename(d->trash, b);
      dop_free(d);
      return r;
    }
    d->y = sb.st_ino;
  } else if (renameat2(AT_FDCWD, a, AT_FDCWD, b, flags & RENAME_NOREPLACE) != 0) {
    r = -errno;
    dop_free(d);
    return r;
  }
  dop_add(d);
  return 0;
}

static int pf_rename(const char *from, const char *to, unsigned int flags) {
  LOCK();
  int r = do_rename(from, to, flags);
  UNLOCK();
  return r;
}

static int pf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  LOCK();
  int r = fail_for(F_META);
  if (!r) {
    if (fi) r = fchmod(((struct fh *)(uintptr_t)fi->fh)->fd, mode) ? -errno : 0;
    else {
      char p[PATH_MAX];
      r = bpath(p, path);
      if (!r) r = chmod(p, mode) ? -errno : 0;
    }
  }
  UNLOCK();
  return r;
}

static int pf_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  LOCK();
  int r = fail_for(F_META);
  if (!r) {
    if (fi) r = fchown(((struct fh *)(uintptr_t)fi->fh)->fd, uid, gid) ? -errno : 0;
    else {
      char p[PATH_MAX];
      r = bpath(p, path);
      if (!r) r = lchown(p, uid, gid) ? -errno : 0;
    }
  }
  UNLOCK();
  return r;
}

static int pf_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
  LOCK();
  int r = fail_for(F_META);
  if (!r) {
    if (fi) r = futimens(((struct fh *)(uintptr_t)fi->fh)->fd, tv) ? -errno : 0;
    else {
      char p[PATH_MAX];
      r = bpath(p, path);
      if (!r) r = utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
    }
  }
  UNLOCK();
  return r;
}

static int truncate_fd(int fd, ino_t ino, off_t size) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  off_t lo = size < st.st_size ? size : st.st_size, hi = size < st.st_size ? st.st_size : size;
  int r = log_change(fd, ino, lo, hi, size, st.st_size, (size_t)(hi - lo));
  if (r) return r;
  if (size < st.st_size) {
    struct flog *f = flog_get(ino, 0);
    if (f && f->n) f->v[f->n - 1].shrink_to = size;
  }
  return ftruncate(fd, size) ? -errno : 0;
}

static int pf_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  LOCK();
  int r = fail_for(F_WRITE);
  if (!r) {
    if (fi) {
      struct fh *h = (struct fh *)(uintptr_t)fi->fh;
      r = truncate_fd(h->fd, h->ino, size);
    } else {
      char p[PATH_MAX];
      r = bpath(p, path);
      int fd = r ? -1 : open(p, O_RDWR | O_CLOEXEC);
      if (!r && fd < 0) r = -errno;
      if (fd >= 0) {
        struct stat st;
        r = fstat(fd, &st) ? -errno : truncate_fd(fd, st.st_ino, size);
        close(fd);
      }
    }
  }
  UNLOCK();
  return r;
}

/* The kernel already turned O_APPEND into an offset; the backing fd must honour that offset. */
static int open_common(const char *path, struct fuse_file_info *fi, mode_t mode, int creating) {
  char p[PATH_MAX];
  int r = fail_for(F_META);
  if (!r) r = bpath(p, path);
  if (r) return r;
  int existed = 1;
  if (creating) {
    struct stat st;
    existed = lstat(p, &st) == 0;
  }
  int flags = fi->flags & ~(O_APPEND | O_TRUNC | O_NOFOLLOW);
  flags |= O_CLOEXEC;
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;  /* undo needs to read */
  int fd = open(p, flags, mode);
  if (fd < 0 && errno == EACCES && (flags & O_ACCMODE) == O_RDWR && (fi->flags & O_ACCMODE) == O_WRONLY)
    fd = open(p, (flags & ~O_ACCMODE) | O_WRONLY, mode);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) { r = -errno; close(fd); return r; }
  if (creating && !existed && (r = log_create(path, 1))) { close(fd); return r; }
  if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY && st.st_size > 0 &&
      (r = truncate_fd(fd, st.st_ino, 0))) {
    close(fd);
    return r;
  }
  struct fh *h = calloc(1, sizeof *h);
  if (!h) { close(fd); return -ENOMEM; }
  h->fd = fd;
  h->ino = st.st_ino;
  fi->fh = (uintptr_t)h;
  fi->direct_io = g_direct_io;
  fi->keep_cache = 0;
  return 0;
}

static int pf_open(const char *path, struct fuse_file_info *fi) {
  LOCK();
  int r = open_common(path, fi, 0, 0);
  UNLOCK();
  return r;
}

static int pf_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  LOCK();
  fi->flags |= O_CREAT;
  int r = open_common(path, fi, mode, 1);
  UNLOCK();
  return r;
}

static int pf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  LOCK();
  int r = fail_for(F_READ);
  if (!r) {
    ssize_t n = pread(((struct fh *)(uintptr_t)fi->fh)->fd, buf, size, off);
    r = n < 0 ? -errno : (int)n;
  }
  UNLOCK();
  return r;
}

static int pf_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  LOCK();
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  int r = fail_for(F_WRITE);
  if (!r) r = log_change(h->fd, h->ino, off, off + (off_t)size, off, off + (off_t)size, size);
  if (!r) {
    ssize_t n = pwrite(h->fd, buf, size, off);
    r = n < 0 ? -errno : (int)n;
    g_nwrites++;
  }
  UNLOCK();
  return r;
}

static int pf_statfs(const char *path, struct statvfs *st) {
  (void)path;
  LOCK();
  int r = fail_for(F_META);
  if (!r) r = statvfs(g_root, st) ? -errno : 0;
  UNLOCK();
  return r;
}

static int pf_flush(const char *path, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  return 0;
}

static int pf_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  LOCK();
  close(h->fd);
  free(h);
  UNLOCK();
  return 0;
}

/* The backing store's own durability is irrelevant to the model: fsync only empties the log. */
static int pf_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path; (void)datasync;
  LOCK();
  int r = fail_for(F_FSYNC);
  if (!r) {
    flog_forget(((struct fh *)(uintptr_t)fi->fh)->ino);
    g_nsyncs++;
  }
  UNLOCK();
  return r;
}

static int pf_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
  (void)path;
  LOCK();
  struct fh *h = (struct fh *)(uintptr_t)fi->fh;
  int r = fail_for(F_WRITE);
  if (!r && (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) r = -EOPNOTSUPP;
  if (!r) {
    struct stat st;
    if (fstat(h->fd, &st) != 0) r = -errno;
    else if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
      r = log_change(h->fd, h->ino, off, off + len, off, off + len, (size_t)len);
    else if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > st.st_size)
      r = log_change(h->fd, h->ino, st.st_size, off + len, 0, 0, (size_t)(off + len - st.st_size));
  }
  if (!r) r = fallocate(h->fd, mode, off, len) ? -errno : 0;
  UNLOCK();
  return r;
}

/* ------------------------------------------------------------------ cuts */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum { M_DROP, M_PAGES, M_PREFIX };

struct report {
  uint64_t lost, kept, reverted_dirops, volatile_files;
};

/* In-memory namespace of the backing tree (plus the trash), for reverting directory ops. */
struct ent {
  char *name;
  ino_t ino;
};
struct node {
  ino_t ino;
  mode_t mode;
  char *path;        /* somewhere this inode can be read in the backing store */
  struct ent *kids;  /* directories only */
  size_t nk, ck;
  int is_dir;
  char *made;        /* destination path once materialised (hard links) */
  int visiting;
  struct node *next;
  struct stat st;
};

struct ns {
  struct node *b[NBUCKET];
  ino_t root;
};

static struct node *ns_get(struct ns *ns, ino_t ino) {
  for (struct node *n = ns->b[bucket(ino)]; n; n = n->next)
    if (n->ino == ino) return n;
  return NULL;
}

static struct node *ns_add(struct ns *ns, const char *path, const struct stat *st) {
  struct node *n = ns_get(ns, st->st_ino);
  if (n) return n;
  n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->ino = st->st_ino;
  n->mode = st->st_mode;
  n->st = *st;
  n->is_dir = S_ISDIR(st->st_mode);
  n->path = strdup(path);
  unsigned b = bucket(st->st_ino);
  n->next = ns->b[b];
  ns->b[b] = n;
  return n;
}

static int kid_find(struct node *d, const char *name) {
  for (size_t i = 0; i < d->nk; i++)
    if (!strcmp(d->kids[i].name, name)) return (int)i;
  return -1;
}

static void kid_del(struct node *d, int i) {
  free(d->kids[i].name);
  d->kids[i] = d->kids[--d->nk];
}

static int kid_add(struct node *d, const char *name, ino_t ino) {
  if (d->nk == d->ck) {
    size_t c = d->ck ? d->ck * 2 : 8;
    struct ent *k = realloc(d->kids, c * sizeof *k);
    if (!k) return -ENOMEM;
    d->kids = k;
    d->ck = c;
  }
  d->kids[d->nk].name = strdup(name);
  d->kids[d->nk].ino = ino;
  d->nk++;
  return 0;
}

/* Walks a backing directory into the namespace; `link_kids` is 0 for the trash, whose entries
 * are only made known by inode. */
static int ns_walk(struct ns *ns, const char *path, struct node *parent) {
  DIR *dir = opendir(path);
  if (!dir) return -errno;
  struct dirent *e;
  int r = 0;
  while (!r && (e = readdir(dir))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= (int)sizeof p) { r = -ENAMETOOLONG; break; }
    struct stat st;
    if (lstat(p, &st) != 0) continue;
    int known = ns_get(ns, st.st_ino) != NULL;
    struct node *n = ns_add(ns, p, &st);
    if (!n) { r = -ENOMEM; break; }
    if (parent) r = kid_add(parent, e->d_name, st.st_ino);
    if (!r && !known && S_ISDIR(st.st_mode)) r = ns_walk(ns, p, n);
  }
  closedir(dir);
  return r;
}

static void ns_free(struct ns *ns) {
  for (unsigned b = 0; b < NBUCKET; b++) {
    struct node *n = ns->b[b];
    while (n) {
      struct node *next = n->next;
      for (size_t i = 0; i < n->nk; i++) free(n->kids[i].name);
      free(n->kids);
      free(n->path);
      free(n->made);
      free(n);
      n = next;
    }
  }
}

/* Reverts one directory op on the namespace. Ops are reverted newest first, so the names they
 * recorded are current again, unless a later durable op moved things: then the part that no
 * longer matches is skipped (the durable op wins). */
static void ns_revert(struct ns *ns, const struct dop *d) {
  struct node *p1 = ns_get(ns, d->d1), *p2 = d->d2 ? ns_get(ns, d->d2) : NULL;
  int i;
  switch (d->type) {
    case OP_CREATE:
      if (p1 && (i = kid_find(p1, d->n1)) >= 0 && p1->kids[i].ino == d->x) kid_del(p1, i);
      break;
    case OP_REMOVE:
      if (p1 && kid_find(p1, d->n1) < 0 && ns_get(ns, d->x)) kid_add(p1, d->n1, d->x);
      break;
    case OP_RENAME:
      if (p2 && (i = kid_find(p2, d->n2)) >= 0 && p2->kids[i].ino == d->x) {
        kid_del(p2, i);
        if (p1 && kid_find(p1, d->n1) < 0) kid_add(p1, d->n1, d->x);
      }
      if (d->y && p2 && kid_find(p2, d->n2) < 0 && ns_get(ns, d->y)) kid_add(p2, d->n2, d->y);
      break;
    case OP_EXCHANGE:
      if (p1 && p2) {
        int a = kid_find(p1, d->n1), b = kid_find(p2, d->n2);
        if (a >= 0 && b >= 0 && p1->kids[a].ino == d->y && p2->kids[b].ino == d->x) {
          p1->kids[a].ino = d->x;
          p2->kids[b].ino = d->y;
        }
      }
      break;
  }
}

static int copy_fd(int in, int out) {
  for (;;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n == 0) return 0;
    if (n > 0) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return -errno;
    break;
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0) return -errno;
    if (n == 0) return 0;
    for (ssize_t w = 0; w < n;) {
      ssize_t m = write(out, buf + w, (size_t)(n - w));
      if (m < 0) return -errno;
      w += m;
    }
  }
}

static int undo_apply(int fd, const struct undo *u) {
  if (u->oldn) {
    size_t done = 0;
    while (done < u->oldn) {
      ssize_t w = pwrite(fd, u->old + done, u->oldn - done, u->old_off + (off_t)done);
      if (w < 0) return -errno;
      done += (size_t)w;
    }
  }
  return ftruncate(fd, u->old_size) ? -errno : 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Reverts a copy of a file (open read-write as `fd`) to what survives the cut. */
static int revert_file(int fd, struct flog *f, int mode, uint64_t cutseq, uint64_t *rng, struct report *rep) {
  if (!f || !f->n) return 0;
  int r = 0;
  if (mode != M_PAGES) {
    for (size_t i = f->n; i-- > 0;) {
      if (f->v[i].seq < cutseq) { rep->kept += f->v[i].bytes; continue; }
      if ((r = undo_apply(fd, &f->v[i]))) return r;
      rep->lost += f->v[i].bytes;
    }
    return 0;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  off_t csize = st.st_size;
  size_t np = 0, cp = 0;
  uint64_t *pages = NULL;
  /* A pending shrink is kept or lost whole, as a journalled size change is: blocks a truncate
   * freed are not reused before it commits, so the old data past the new size is either all
   * there (with the old size) or cut off. Only the page holding the new end, whose tail the
   * truncate zeroed in the page cache, may reach the disk on its own: it is a touched page
   * like a write's. */
  off_t shrink = -1;
  for (size_t i = 0; i < f->n; i++) {
    if (f->v[i].shrink_to < 0) continue;
    if ((rng_next(rng) & 1) && (shrink < 0 || f->v[i].shrink_to < shrink)) shrink = f->v[i].shrink_to;
  }
  for (size_t i = 0; i < f->n; i++) {
    uint64_t a = (uint64_t)f->v[i].lo / PAGE, b = ((uint64_t)f->v[i].hi + PAGE - 1) / PAGE;
    if (f->v[i].shrink_to >= 0) b = f->v[i].lo % PAGE ? a + 1 : a;
    for (uint64_t p = a; p < b; p++) {
      if (np == cp) {
        cp = cp ? cp * 2 : 64;
        uint64_t *q = realloc(pages, cp * sizeof *q);
        if (!q) { free(pages); return -ENOMEM; }
        pages = q;
      }
      pages[np++] = p;
    }
  }
  qsort(pages, np, sizeof *pages, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < np; i++)
    if (!u || pages[u - 1] != pages[i]) pages[u++] = pages[i];
  np = u;
  unsigned char *cur = calloc(np ? np : 1, PAGE);
  if (!cur) { free(pages); return -ENOMEM; }
  for (size_t i = 0; i < np; i++) {
    ssize_t n = pread(fd, cur + i * PAGE, PAGE, (off_t)(pages[i] * PAGE));
    if (n < 0) { r = -errno; goto out; }
  }
  for (size_t i = f->n; i-- > 0;)
    if ((r = undo_apply(fd, &f->v[i]))) goto out;
  if (fstat(fd, &st) != 0) { r = -errno; goto out; }
  /* A kept shrink: the synced data past its new size is gone (later writes kept below
   * bring back only their own pages; the rest of the file past it reads as zeros). */
  if (shrink >= 0 && shrink < st.st_size) {
    if (ftruncate(fd, shrink) != 0) { r = -errno; goto out; }
    st.st_size = shrink;
  }
  off_t ssize = st.st_size, kept_end = 0, vis = csize > ssize ? csize : ssize;
  for (size_t i = 0; i < np; i++) {
    off_t at = (off_t)(pages[i] * PAGE);
    off_t n = at < vis ? (vis - at < (off_t)PAGE ? vis - at : (off_t)PAGE) : 0;
    if (rng_next(rng) & 1) {
      if (pwrite(fd, cur + i * PAGE, PAGE, at) < 0) { r = -errno; goto out; }
      if (at < csize) kept_end = at + PAGE;
      rep->kept += (uint64_t)n;
    } else {
      rep->lost += (uint64_t)n;
    }
  }
  off_t fin = ssize;
  if (csize > ssize) {
    off_t ext = kept_end < csize ? kept_end : csize;
    if (ext > fin) fin = ext;
  }
  if (ftruncate(fd, fin) != 0) r = -errno;
out:
  free(cur);
  free(pages);
  return r;
}

static int materialize_node(struct ns *ns, struct node *n, const char *dest, int mode, uint64_t cutseq,
                            uint64_t *rng, struct report *rep) {
  int r = 0;
  if (n->made) return link(n->made, dest) ? -errno : 0;
  if (n->is_dir) {
    if (mkdir(dest, n->mode & 07777) != 0 && errno != EEXIST) return -errno;
    if (n->visiting) return 0;
    n->visiting = 1;
    for (size_t i = 0; i < n->nk && !r; i++) {
      struct node *k = ns_get(ns, n->kids[i].ino);
      if (!k) continue;
      char p[PATH_MAX];
      if (snprintf(p, sizeof p, "%s/%s", dest, n->kids[i].name) >= (int)sizeof p) return -ENAMETOOLONG;
      r = materialize_node(ns, k, p, mode, cutseq, rng, rep);
    }
    n->visiting = 0;
    if (!r) chmod(dest, n->mode & 07777);
    return r;
  }
  if (S_ISLNK(n->mode)) {
    char t[PATH_MAX];
    ssize_t len = readlink(n->path, t, sizeof t - 1);
    if (len < 0) return -errno;
    t[len] = 0;
    if (symlink(t, dest) != 0) return -errno;
  } else if (S_ISREG(n->mode)) {
    int in = open(n->path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -errno;
    int out = open(dest, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, n->mode & 07777);
    if (out < 0) { r = -errno; close(in); return r; }
    r = copy_fd(in, out);
    if (!r) r = revert_file(out, flog_get(n->ino, 0), mode, cutseq, rng, rep);
    if (!r) {
      struct timespec ts[2] = {n->st.st_atim, n->st.st_mtim};
      futimens(out, ts);
    }
    close(in);
    close(out);
    if (r) return r;
  } else {
    if (mknod(dest, n->mode, n->st.st_rdev) != 0) return -errno;
  }
  n->made = strdup(dest);
  return 0;
}

/* Builds the post-cut tree at `dest` (created; it may exist if empty). Called with g_lock held. */
static int materialize(const char *dest, int mode, uint64_t seed, struct report *rep) {
  memset(rep, 0, sizeof *rep);
  uint64_t rng = seed ^ 0x5DEECE66Dull;
  rng_next(&rng);
  /* Everything unsynced, in global order; prefix mode keeps those before a random point. */
  size_t nseq = 0, cseq = 0;
  uint64_t *seqs = NULL;
  for (unsigned b = 0; b < NBUCKET; b++)
    for (struct flog *f = g_flogs[b]; f; f = f->next) {
      if (f->n) rep->volatile_files++;
      for (size_t i = 0; i < f->n; i++) {
        if (nseq == cseq) {
          cseq = cseq ? cseq * 2 : 256;
          uint64_t *q = realloc(seqs, cseq * sizeof *q);
          if (!q) { free(seqs); return -ENOMEM; }
          seqs = q;
        }
        seqs[nseq++] = f->v[i].seq;
      }
    }
  for (struct dop *d = g_dops_head; d; d = d->next) {
    if (nseq == cseq) {
      cseq = cseq ? cseq * 2 : 256;
      uint64_t *q = realloc(seqs, cseq * sizeof *q);
      if (!q) { free(seqs); return -ENOMEM; }
      seqs = q;
    }
    seqs[nseq++] = d->seq;
  }
  uint64_t cutseq = 0;
  if (mode == M_PREFIX && nseq) {
    qsort(seqs, nseq, sizeof *seqs, cmp_u64);
    size_t k = (size_t)(rng_next(&rng) % (nseq + 1));
    cutseq = k == nseq ? UINT64_MAX : seqs[k];
  }
  free(seqs);

  struct ns ns;
  memset(&ns, 0, sizeof ns);
  struct stat st;
  int r = lstat(g_root, &st) ? -errno : 0;
  struct node *root = r ? NULL : ns_add(&ns, g_root, &st);
  if (!r && !root) r = -ENOMEM;
  if (!r) { ns.root = st.st_ino; r = ns_walk(&ns, g_root, root); }
  if (!r) r = ns_walk(&ns, g_trash, NULL);
  if (!r) {
    /* newest first: collect the op list into an array */
    struct dop **v = calloc(g_ndops ? g_ndops : 1, sizeof *v);
    if (!v) r = -ENOMEM;
    size_t n = 0;
    for (struct dop *d = g_dops_head; v && d; d = d->next) v[n++] = d;
    for (size_t i = n; v && i-- > 0;)
      if (v[i]->seq >= cutseq) { ns_revert(&ns, v[i]); rep->reverted_dirops++; }
    free(v);
  }
  if (!r && mkdir(dest, 0755) != 0) {
    if (errno != EEXIST) r = -errno;
    else if (dir_empty(dest) != 1) r = -ENOTEMPTY;
  }
  if (!r) {
    root->visiting = 0;
    /* the root itself already exists at dest: materialise its children */
    root->is_dir = 1;
    r = materialize_node(&ns, root, dest, mode, cutseq, &rng, rep);
  }
  ns_free(&ns);
  return r;
}

static int parse_mode(const char *s) {
  if (!strcmp(s, "drop")) return M_DROP;
  if (!strcmp(s, "pages")) return M_PAGES;
  if (!strcmp(s, "prefix")) return M_PREFIX;
  return -1;
}

static void clear_all_logs(void) {
  for (unsigned b = 0; b < NBUCKET; b++)
    for (struct flog *f = g_flogs[b]; f; f = f->next) flog_clear(f);
  while (g_dops_head) {
    struct dop *d = g_dops_head;
    g_dops_head = d->next;
    dop_free(d);
  }
  g_dops_tail = NULL;
  g_ndops = 0;
}

/* Power cut in place: the served tree becomes what survives, then every operation fails. */
static int cut_in_place(int mode, uint64_t seed, struct report *rep) {
  char tmp[PATH_MAX], old[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/cut.tmp", g_state);
  snprintf(old, sizeof old, "%s/cut.old", g_state);
  rm_rf(tmp);
  rm_rf(old);
  int r = materialize(tmp, mode, seed, rep);
  if (r) { rm_rf(tmp); return r; }
  if (rename(g_root, old) != 0) return -errno;
  if (rename(tmp, g_root) != 0) { r = -errno; rename(old, g_root); return r; }
  rm_rf(old);
  rm_rf(g_trash);
  mkdir(g_trash, 0700);
  clear_all_logs();
  g_off = 1;
  return 0;
}

/* ------------------------------------------------------------------ control channel */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void reply(int c, const char *fmt, ...) {
  char buf[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  for (int w = 0; w < n;) {
    ssize_t m = send(c, buf + w, (size_t)(n - w), MSG_NOSIGNAL);
    if (m <= 0) return;
    w += (int)m;
  }
}

static int fail_mask_of(const char *s) {
  int m = 0;
  char tmp[256];
  snprintf(tmp, sizeof tmp, "%s", s);
  for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (!strcmp(t, "read")) m |= F_READ;
    else if (!strcmp(t, "write")) m |= F_WRITE;
    else if (!strcmp(t, "fsync")) m |= F_FSYNC;
    else if (!strcmp(t, "meta")) m |= F_META;
    else if (!strcmp(t, "link")) m |= F_LINK;
    else if (!strcmp(t, "all")) m |= F_READ | F_WRITE | F_FSYNC | F_META | F_LINK;
    else return -1;
  }
  return m;
}

static void handle(int c, char *line) {
  size_t len = strlen(line);
  while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = 0;
  char *sp = strchr(line, ' ');
  char *args = sp ? sp + 1 : line + len;
  if (sp) *sp = 0;
  if (!strcmp(line, "ping")) { reply(c, "ok {}"); return; }
  if (!strcmp(line, "stats")) {
    LOCK();
    uint64_t vf = 0, vb = 0;
    for (unsigned b = 0; b < NBUCKET; b++)
      for (struct flog *f = g_flogs[b]; f; f = f->next) {
        if (f->n) vf++;
        for (size_t i = 0; i < f->n; i++) vb += f->v[i].bytes;
      }
    reply(c,
          "ok {\"volatileFiles\":%" PRIu64 ",\"volatileBytes\":%" PRIu64 ",\"pendingDirOps\":%zu,\"writes\":%" PRIu64
          ",\"fsyncs\":%" PRIu64 ",\"dirFsyncs\":%" PRIu64 ",\"snapshots\":%" PRIu64 ",\"cuts\":%" PRIu64
          ",\"poweredOff\":%s}",
          vf, vb, g_ndops, g_nwrites, g_nsyncs, g_ndirsyncs, g_nsnap, g_ncut, g_off ? "true" : "false");
    UNLOCK();
    return;
  }
  if (!strcmp(line, "fail")) {
    char what[256];
    int err = 0;
    if (!strcmp(args, "off")) {
      LOCK();
      g_fail_mask = 0;
      UNLOCK();
      reply(c, "ok {}");
      return;
    }
    int m = sscanf(args, "%255s %d", what, &err) == 2 ? fail_mask_of(what) : -1;
    if (m < 0 || err <= 0) { reply(c, "err %d fail: expected 'fail OPS ERRNO' or 'fail off', got '%s'", EINVAL, args); return; }
    LOCK();
    g_fail_mask = m;
    g_fail_errno = err;
    UNLOCK();
    reply(c, "ok {}");
    return;
  }
  int snap = !strcmp(line, "snapshot");
  if (snap || !strcmp(line, "cut")) {
    /* the last two words are MODE SEED; a snapshot's DEST is whatever precedes them */
    char *s2 = strrchr(args, ' ');
    char *s1 = NULL;
    if (s2) { *s2 = 0; s1 = strrchr(args, ' '); }
    char *mode_s = s1 ? s1 + 1 : (snap ? NULL : args);
    if (s1) *s1 = 0;
    char *dest = snap && s1 ? args : NULL;
    int mode = mode_s && s2 ? parse_mode(mode_s) : -1;
    char *end = NULL;
    uint64_t seed = s2 ? strtoull(s2 + 1, &end, 10) : 0;
    if (mode < 0 || !end || *end || (snap && (!dest || dest[0] != '/'))) {
      reply(c, "err %d %s: expected '%s', bad argument", EINVAL, line,
            snap ? "snapshot /ABS/DEST drop|pages|prefix SEED" : "cut drop|pages|prefix SEED");
      return;
    }
    LOCK();
    double t0 = now_ms();
    struct report rep;
    int r;
    if (g_off) r = -EIO;
    else if (snap) r = materialize(dest, mode, seed, &rep);
    else r = cut_in_place(mode, seed, &rep);
    if (!r) { if (snap) g_nsnap++; else g_ncut++; }
    double ms = now_ms() - t0;
    UNLOCK();
    if (r) {
      reply(c, "err %d %s: %s", -r, line, strerror(-r));
      return;
    }
    reply(c,
          "ok {\"lostBytes\":%" PRIu64 ",\"keptBytes\":%" PRIu64 ",\"revertedDirOps\":%" PRIu64
          ",\"volatileFiles\":%" PRIu64 ",\"ms\":%.3f}",
          rep.lost, rep.kept, rep.reverted_dirops, rep.volatile_files, ms);
    return;
  }
  reply(c, "err %d unknown command '%s'", EINVAL, line);
}

static void *conn_main(void *arg) {
  int c = (int)(intptr_t)arg;
  char buf[PATH_MAX * 2];
  size_t have = 0;
  for (;;) {
    ssize_t n = recv(c, buf + have, sizeof buf - 1 - have, 0);
    if (n <= 0) break;
    have += (size_t)n;
    buf[have] = 0;
    char *nl;
    while ((nl = memchr(buf, '\n', have))) {
      *nl = 0;
      handle(c, buf);
      size_t used = (size_t)(nl + 1 - buf);
      memmove(buf, nl + 1, have - used);
      have -= used;
      buf[have] = 0;
    }
    if (have == sizeof buf - 1) break;
  }
  close(c);
  return NULL;
}

static void *ctl_main(void *arg) {
  int s = (int)(intptr_t)arg;
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)c) == 0) pthread_detach(t);
    else close(c);
  }
  return NULL;
}

/* If the test process dies without unmounting, lazily unmount so no dead mount is left behind. */
static void *watchdog_main(void *arg) {
  (void)arg;
  for (;;) {
    sleep(1);
    if (kill(g_parent, 0) != 0 && errno == ESRCH) {
      pid_t p = fork();
      if (p == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-z", g_mnt, (char *)NULL);
        _exit(127);
      }
      if (p > 0) waitpid(p, NULL, 0);
      return NULL;
    }
  }
}

static int start_control(void) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(g_ctl) >= sizeof a.sun_path) { close(s); return -ENAMETOOLONG; }
  strcpy(a.sun_path, g_ctl);
  unlink(g_ctl);
  /* bind to a temporary name and rename: the harness sees the socket only once it accepts */
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", g_ctl);
  if (strlen(tmp) >= sizeof a.sun_path) { close(s); return -ENAMETOOLONG; }
  strcpy(a.sun_path, tmp);
  unlink(tmp);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 8) != 0) { int e = errno; close(s); return -e; }
  pthread_t t;
  if (pthread_create(&t, NULL, ctl_main, (void *)(intptr_t)s) != 0) { close(s); return -EAGAIN; }
  pthread_detach(t);
  if (rename(tmp, g_ctl) != 0) return -errno;
  if (g_parent > 0 && pthread_create(&t, NULL, watchdog_main, NULL) == 0) pthread_detach(t);
  return 0;
}

/* Called once the kernel has answered INIT, i.e. the mount is live: only now open the
 * control socket, so "socket exists" means "mounted". */
static void *pf_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
  cfg->use_ino = 1;
  cfg->hard_remove = 1;
  cfg->nullpath_ok = 1;
  cfg->kernel_cache = 0;
  cfg->direct_io = g_direct_io;
  cfg->entry_timeout = 1.0;
  cfg->attr_timeout = 1.0;
  cfg->negative_timeout = 0;
  int r = start_control();
  if (r) {
    fprintf(stderr, "powerfs: control socket %s: %s\n", g_ctl, strerror(-r));
    exit(1);
  }
  return NULL;
}

static const struct fuse_operations ops = {
    .init = pf_init,
    .getattr = pf_getattr,
    .access = pf_access,
    .readlink = pf_readlink,
    .opendir = pf_opendir,
    .readdir = pf_readdir,
    .releasedir = pf_releasedir,
    .fsyncdir = pf_fsyncdir,
    .mknod = pf_mknod,
    .mkdir = pf_mkdir,
    .symlink = pf_symlink,
    .unlink = pf_unlink,
    .rmdir = pf_rmdir,
    .rename = pf_rename,
    .link = pf_link,
    .chmod = pf_chmod,
    .chown = pf_chown,
    .truncate = pf_truncate,
    .utimens = pf_utimens,
    .open = pf_open,
    .create = pf_create,
    .read = pf_read,
    .write = pf_write,
    .statfs = pf_statfs,
    .flush = pf_flush,
    .release = pf_release,
    .fsync = pf_fsync,
    .fallocate = pf_fallocate,
};

static void usage(void) {
  fprintf(stderr, "usage: powerfs --state DIR --ctl SOCKET [--parent PID] [--direct-io] MOUNTPOINT\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *state = NULL, *ctl = NULL, *mnt = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--state") && i + 1 < argc) state = argv[++i];
    else if (!strcmp(argv[i], "--ctl") && i + 1 < argc) ctl = argv[++i];
    else if (!strcmp(argv[i], "--parent") && i + 1 < argc) g_parent = (pid_t)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--direct-io")) g_direct_io = 1;
    else if (argv[i][0] != '-' && !mnt) mnt = argv[i];
    else usage();
  }
  if (!state || !ctl || !mnt) usage();
  if (!realpath(state, g_state)) { fprintf(stderr, "powerfs: state dir %s: %s\n", state, strerror(errno)); return 1; }
  if (!realpath(mnt, g_mnt)) { fprintf(stderr, "powerfs: mountpoint %s: %s\n", mnt, strerror(errno)); return 1; }
  /* every derived path below is built with snprintf into PATH_MAX buffers: keep headroom */
  if (strlen(g_state) > 1024 || strlen(ctl) > 1024) { fprintf(stderr, "powerfs: paths too long\n"); return 1; }
  snprintf(g_root, sizeof g_root, "%s/root", g_state);
  snprintf(g_trash, sizeof g_trash, "%s/trash", g_state);
  snprintf(g_ctl, sizeof g_ctl, "%s", ctl);
  mkdir(g_root, 0755);
  /* A remount starts from a durable state: nothing parked from a previous life is needed. */
  rm_rf(g_trash);
  if (mkdir(g_trash, 0700) != 0) { fprintf(stderr, "powerfs: %s: %s\n", g_trash, strerror(errno)); return 1; }
  umask(0);
  char *fargv[] = {argv[0], g_mnt, "-f", "-s", "-o", "fsname=powerfs,subtype=powerfs", NULL};
  return fuse_main(6, fargv, &ops, NULL);
}
