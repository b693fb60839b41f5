// msl_launch.cpp -- a launch: guarded buffers, the forked child and its fault handler (see
// msl_runtime.h).
//
// Buffers live in shared mappings between guard pages, each placed so that its last byte touches
// the trailing guard. The kernel runs in a forked child whose signal handler turns a fault into a
// Report, so a bad kernel can neither crash nor corrupt the caller.
#include "msl_internal.h"  // first: it sets feature macros for the system headers

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

namespace msl_rt {

Region g_regions[kMaxRegions];
int g_nregions;

namespace {

constexpr size_t kDeviceGuard = size_t(1) << 20;  // wide, so that far overruns also fault
constexpr int kMaxBuffers = 256;
constexpr unsigned char kCanary = 0xCB;  // slack before a device buffer's first byte
pthread_mutex_t g_inprocess_lock = PTHREAD_MUTEX_INITIALIZER;

int access_of(void* uc) {
#if defined(__x86_64__) && defined(__linux__)
  return (static_cast<ucontext_t*>(uc)->uc_mcontext.gregs[REG_ERR] & 2) ? kWrite : kRead;
#else
  (void)uc;
  return kUnknownAccess;
#endif
}

void copy_text(char* dst, size_t n, const char* src) {  // async-signal-safe strncpy
  size_t i = 0;
  for (; src && src[i] && i + 1 < n; ++i) dst[i] = src[i];
  dst[i] = 0;
}

// The buffer or threadgroup array whose guard pages hold `a`; failing that, the nearest device
// buffer below it, because a wrapped 32-bit index lands gigabytes past its buffer.
const Region* find_region(uintptr_t a) {
  int n = __atomic_load_n(&g_nregions, __ATOMIC_ACQUIRE);
  n = n < kMaxRegions ? n : kMaxRegions;
  for (int i = 0; i < n; ++i)
    if (a >= g_regions[i].lo && a < __atomic_load_n(&g_regions[i].hi, __ATOMIC_ACQUIRE))
      return &g_regions[i];
  const Region* best = nullptr;
  for (int i = 0; i < n; ++i) {
    const Region& g = g_regions[i];
    if (g.buffer >= 0 && a >= g.data && a - g.data < (uintptr_t(1) << 40) &&
        (!best || g.data > best->data))
      best = &g;
  }
  return best;
}

void on_fatal_signal(int sig, siginfo_t* si, void* uc) {
  if (!claim_failure()) {
    // Another worker is writing the report (two threadgroups hit the same bug): exiting now would
    // end the process before it finishes. Its _exit ends this thread too; wait up to a second.
    timespec pause_10ms = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 100; ++i) nanosleep(&pause_10ms, nullptr);
    _exit(g_report->status ? g_report->status : kCrash);
  }
  Report& r = *g_report;
  r.signal = sig;
  r.status = kCrash;
  note_thread(r);
  uintptr_t a = uintptr_t(si->si_addr);
  const char* why = "the kernel crashed";
  if (sig == SIGSEGV || sig == SIGBUS) {
    r.access = access_of(uc);
    const Region* hit = nullptr;
    if (in_stack_guard(a)) {
      why = "stack overflow of a GPU thread (large local arrays?; see OSS_DESK_EMU_STACK_KIB)";
    } else if ((hit = find_region(a)) != nullptr) {
      r.status = kOutOfBounds;
      r.buffer = hit->buffer;
      r.offset = int64_t(a - hit->data);
      r.nbytes = int64_t(hit->nbytes);
      copy_text(r.region, sizeof r.region, hit->name);
    } else {
      why = "invalid memory access outside every buffer (a wild pointer)";
      r.offset = int64_t(a);
    }
  } else if (sig == SIGFPE) {
    why = "arithmetic exception (an integer division by zero? GPUs do not trap, CPUs do)";
  }
  if (r.status == kCrash) copy_text(r.message, sizeof r.message, why);
  _exit(r.status);
}

[[noreturn]] void child_main(Launch& L, Mapping* maps, const Buffer* bufs, int n) {
#if defined(__linux__)
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  for (int s = 1; s < 32; ++s)  // the caller's handlers (Python's) must not run here
    if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
  struct sigaction sa{};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
  for (int s : fatal) sigaction(s, &sa, nullptr);
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_UNBLOCK, &all, nullptr);
  for (int i = 0; i < n; ++i) {
    add_region(maps[i], bufs[i].nbytes, i, nullptr);
    if (!bufs[i].writable && maps[i].inner_len) mprotect(maps[i].inner, maps[i].inner_len, PROT_READ);
  }
  if (L.opt.timeout_s > 0) alarm(unsigned(L.opt.timeout_s));
  races_setup(L, maps, bufs, n);
  _exit(run_launch(L));
}

int wait_child(pid_t pid, Report& r) {
  int ws = 0;
  bool interrupted = false;
  while (waitpid(pid, &ws, 0) < 0) {
    if (errno != EINTR) {
      snprintf(r.message, sizeof r.message, "waitpid failed: %s", strerror(errno));
      return r.status = kSetupError;
    }
    if (!interrupted) kill(pid, SIGKILL);  // a signal for the caller (Ctrl-C) stops the launch
    interrupted = true;
  }
  if (interrupted) return r.status = kInterrupted;
  if (WIFEXITED(ws)) {
    if (WEXITSTATUS(ws) == 0) return kOk;
    if (r.status == kOk) {
      snprintf(r.message, sizeof r.message, "the launch exited with code %d", WEXITSTATUS(ws));
      r.status = kCrash;
    }
    return r.status;
  }
  r.signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
  if (r.signal == SIGALRM) return r.status = kTimeout;
  snprintf(r.message, sizeof r.message, "the launch was killed by signal %d%s", r.signal,
           r.signal == SIGKILL ? " (out of memory?)" : "");
  return r.status = kCrash;
}

bool canary_intact(const Mapping& m) {
  for (const char* p = m.inner; p < m.data; ++p)
    if (static_cast<unsigned char>(*p) != kCanary) return false;
  return true;
}

}  // namespace

bool map_guarded(size_t nbytes, size_t guard, bool shared, Mapping& m) {
  size_t pg = page_size();
  m.inner_len = round_up(nbytes, pg);
  m.map_len = guard + m.inner_len + guard;
  void* p = mmap(nullptr, m.map_len, PROT_NONE,
                 (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  m.map = static_cast<char*>(p);
  m.inner = m.map + guard;
  if (m.inner_len && mprotect(m.inner, m.inner_len, PROT_READ | PROT_WRITE) != 0) {
    munmap(m.map, m.map_len);
    return false;
  }
  m.data = m.inner + m.inner_len - nbytes;  // the last byte touches the trailing guard
  return true;
}

void add_region(const Mapping& m, uint64_t nbytes, int32_t buffer, const char* name) {
  int i = __atomic_fetch_add(&g_nregions, 1, __ATOMIC_ACQ_REL);
  if (i >= kMaxRegions) return;
  g_regions[i].data = uintptr_t(m.data);
  g_regions[i].nbytes = nbytes;
  g_regions[i].buffer = buffer;
  g_regions[i].name = name;
  g_regions[i].lo = uintptr_t(m.map);
  __atomic_store_n(&g_regions[i].hi, uintptr_t(m.map + m.map_len), __ATOMIC_RELEASE);
}

namespace {

Launch make_launch(BodyFn body, void* const* ptrs, const uint32_t* grid, const uint32_t* tg,
                   const Options& opt) {
  Launch L{};
  L.body = body;
  L.buffers = ptrs;
  L.grid = {grid[0], grid[1], grid[2]};
  L.tg = {tg[0] < grid[0] ? tg[0] : grid[0], tg[1] < grid[1] ? tg[1] : grid[1],
          tg[2] < grid[2] ? tg[2] : grid[2]};  // MLX clamps the threadgroup to the grid
  L.ntg = {(grid[0] + L.tg.x - 1) / L.tg.x, (grid[1] + L.tg.y - 1) / L.tg.y,
           (grid[2] + L.tg.z - 1) / L.tg.z};
  L.total = uint64_t(L.ntg.x) * L.ntg.y * L.ntg.z;
  L.opt = opt;
  if (L.opt.stack_kib < 16) L.opt.stack_kib = 16;
  ThreadCtx& p = L.proto;
  uint32_t tg_threads = L.tg.x * L.tg.y * L.tg.z;
  p.threads_per_grid = p.grid_size = L.grid;
  p.grid_origin = {0, 0, 0};
  p.dispatch_threads_per_threadgroup = L.tg;
  p.threadgroups_per_grid = L.ntg;
  p.dispatch_simdgroups_per_threadgroup = (tg_threads + kSimdWidth - 1) / kSimdWidth;
  p.dispatch_quadgroups_per_threadgroup = (tg_threads + 3) / 4;
  p.threads_per_simdgroup = p.thread_execution_width = kSimdWidth;
  return L;
}

int run(Launch& L, Mapping* maps, const Buffer* bufs, int n, Report* report) {
  if (!L.opt.isolate) {  // debugging aid: a fault kills the caller, as without the emulator
    pthread_mutex_lock(&g_inprocess_lock);
    g_failed = 0;
    g_report = report;
    g_nregions = 0;
    races_setup(L, maps, bufs, n);
    int status = run_launch(L);
    pthread_mutex_unlock(&g_inprocess_lock);
    return status;
  }
  pid_t pid = fork();
  if (pid == 0) {  // globals are set in the child: concurrent launches share this library
    g_failed = 0;
    g_report = report;
    g_nregions = 0;
    child_main(L, maps, bufs, n);
  }
  if (pid > 0) return wait_child(pid, *report);
  snprintf(report->message, sizeof report->message, "fork failed: %s", strerror(errno));
  return report->status = kSetupError;
}

}  // namespace

int launch(BodyFn body, const Buffer* bufs, int n, const uint32_t* grid, const uint32_t* tg,
           const Options* options, Report* out) {
  memset(out, 0, sizeof *out);
  out->buffer = -1;
  if (n < 0 || n > kMaxBuffers || !tg[0] || !tg[1] || !tg[2] ||
      uint64_t(tg[0]) * tg[1] * tg[2] > uint64_t(kMaxThreads)) {
    snprintf(out->message, sizeof out->message, "invalid launch configuration");
    return out->status = kSetupError;
  }
  if (!grid[0] || !grid[1] || !grid[2]) return kOk;
  bool isolate = options->isolate != 0;
  Report* report = out;  // in shared memory when the child writes it
  if (isolate) {
    void* p = mmap(nullptr, sizeof(Report), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) return out->status = kSetupError;
    report = static_cast<Report*>(p);
    memcpy(report, out, sizeof *out);
  }
  Mapping maps[kMaxBuffers];
  void* ptrs[kMaxBuffers];
  int mapped = 0, status = kOk;
  for (; mapped < n; ++mapped) {
    const Buffer& b = bufs[mapped];
    Mapping& m = maps[mapped];
    if (!map_guarded(b.nbytes, kDeviceGuard, isolate, m)) {
      snprintf(report->message, sizeof report->message, "cannot map a %llu-byte buffer: %s",
               (unsigned long long)b.nbytes, strerror(errno));
      status = report->status = kResourceError;
      break;
    }
    memset(m.inner, kCanary, size_t(m.data - m.inner));
    if (b.nbytes) memcpy(m.data, b.host, b.nbytes);
    ptrs[mapped] = m.data + b.offset;
  }
  if (status == kOk) {
    Launch L = make_launch(body, ptrs, grid, tg, *options);
    status = run(L, maps, bufs, n, report);
  }
  for (int i = 0; i < n && status == kOk; ++i) {
    if (!canary_intact(maps[i])) {  // a write before the buffer's first byte
      report->status = status = kOutOfBounds;
      report->buffer = i;
      report->access = kWrite;
      report->offset = -1;
      report->nbytes = int64_t(bufs[i].nbytes);
    }
  }
  for (int i = 0; i < n && status == kOk; ++i)
    if (bufs[i].writable && bufs[i].nbytes)
      memcpy(const_cast<void*>(bufs[i].host), maps[i].data, bufs[i].nbytes);
  for (int i = 0; i < mapped; ++i) munmap(maps[i].map, maps[i].map_len);
  if (isolate) {
    memcpy(out, report, sizeof *out);
    munmap(report, sizeof(Report));
  }
  out->status = status;
  return status;
}

}  // namespace msl_rt
