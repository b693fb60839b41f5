// msl_scheduler.cpp -- fibers, threadgroup scheduling and synchronisation (see msl_runtime.h).
//
// makecontext() gives each GPU thread its own guarded stack once per launch; switches then use
// _setjmp/_longjmp, which save no signal mask (swapcontext makes two syscalls per switch, ~10x
// slower). A fiber runs its thread to completion and is then reused for the next threadgroup.
#include "msl_internal.h"  // first: it sets feature macros for the system headers

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

namespace msl_rt {

int g_failed;
Report* g_report;

size_t page_size() {
  static size_t pg = size_t(sysconf(_SC_PAGESIZE));
  return pg;
}
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
bool failed() { return __atomic_load_n(&g_failed, __ATOMIC_ACQUIRE) != 0; }
bool claim_failure() {
  int expected = 0;
  return __atomic_compare_exchange_n(&g_failed, &expected, 1, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE);
}

__attribute__((format(printf, 2, 3))) void record(Status status, const char* fmt, ...) {
  if (!claim_failure()) return;
  Report& r = *g_report;
  r.status = status;
  note_thread(r);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r.message, sizeof r.message, fmt, ap);
  va_end(ap);
}

namespace {

constexpr int kMaxSimdgroups = kMaxThreads / kSimdWidth;
constexpr size_t kThreadgroupMemoryLimit = 32768;  // Apple GPUs
constexpr int kMaxTgArrays = 64;

enum FiberState : uint8_t { kDone = 0, kRunnable, kAtBarrier, kAtSimd };

struct Fiber {  // zero-initialised memory is a valid, never-started fiber
  jmp_buf jb;
  ucontext_t uc;
  char* stack;  // a guard page, then the stack
  bool started;
  FiberState state;
  Site site;
  ThreadCtx c;
};

struct SimdGroup {
  int alive, arrived;
  uint32_t gen;
  uint64_t seq;  // of the last release
  Site site;
  uint32_t mask[2];  // double-buffered: lanes still read one op's slots while others deposit
  alignas(16) unsigned char slot[2][kSimdWidth][kSlotBytes];
};

struct TgArray {  // one threadgroup variable, at the end of its own guarded mapping
  int key;
  size_t bytes;
  char *map, *inner, *data;
  size_t map_len, inner_len;
  uint32_t gen;
  const char* name;
};

struct Worker {
  const Launch* L;
  jmp_buf sched;
  Fiber* fibers;  // kMaxThreads, allocated once: running fibers hold pointers into it
  Fiber* starting;
  SimdGroup sg[kMaxSimdgroups];
  int n, alive, exited, bar_arrived;
  Site bar_site;
  int order[kMaxThreads];
  uint64_t rng;
  TgArray tg[kMaxTgArrays];
  int ntg;
  uint32_t gen;
  size_t tg_used;
  void* altstack;
  char* stacks;
  size_t stacks_len;
  ucontext_t uc_template;
};

thread_local Worker* tl_w;
thread_local Fiber* tl_f;

bool same_site(const Site& a, const Site& b) {
  return a.line == b.line && strcmp(a.op, b.op) == 0 && strcmp(a.file, b.file) == 0;
}

// ---- fibers
__attribute__((noinline)) void park(Worker* w, Fiber* f) {
  if (_setjmp(f->jb) == 0) _longjmp(w->sched, 1);
}

// Leaves a fiber for good after a failure; the scheduler sees g_failed and stops the launch.
[[noreturn]] void abandon_fiber() { _longjmp(tl_w->sched, 1); }

__attribute__((noinline)) void enter(Worker* w, Fiber* f) {
  if (_setjmp(w->sched) == 0) {
    if (f->started) _longjmp(f->jb, 1);
    f->started = true;
    w->starting = f;
    setcontext(&f->uc);
    record(kSetupError, "setcontext failed: %s", strerror(errno));
  }
}

uint64_t g_simd_seq;  // rendezvous released so far in this process; __atomic

void release_simd(SimdGroup& g, Worker& w, int sgid) {
  g.gen++;
  g.seq = __atomic_add_fetch(&g_simd_seq, 1, __ATOMIC_RELAXED);
  g.arrived = 0;
  g.mask[g.gen & 1] = 0;
  int end = sgid * kSimdWidth + kSimdWidth < w.n ? sgid * kSimdWidth + kSimdWidth : w.n;
  for (int i = sgid * kSimdWidth; i < end; ++i)
    if (w.fibers[i].state == kAtSimd) w.fibers[i].state = kRunnable;
}

void release_barrier(Worker& w) {
  w.bar_arrived = 0;
  races_barrier();
  for (int i = 0; i < w.n; ++i)
    if (w.fibers[i].state == kAtBarrier) w.fibers[i].state = kRunnable;
}

void thread_exit(Worker* w, Fiber* f) {
  f->state = kDone;
  w->alive--;
  w->exited++;
  int sgid = int(f->c.simdgroup_index_in_threadgroup);
  SimdGroup& g = w->sg[sgid];
  g.alive--;
  if (g.arrived > 0 && g.arrived == g.alive) release_simd(g, *w, sgid);
  if (w->bar_arrived > 0 && w->bar_arrived == w->alive) {
    if (w->L->opt.strict) {
      record(kSyncError,
             "divergent threadgroup_barrier: this thread returned while the other %d live threads "
             "of its threadgroup wait at threadgroup_barrier (%s:%d)",
             w->bar_arrived, w->bar_site.file, w->bar_site.line);
      abandon_fiber();
    }
    release_barrier(*w);
  }
}

void fiber_main() {
  Worker* w = tl_w;
  Fiber* f = w->starting;
  for (;;) {  // one GPU thread per iteration; resumed by the next threadgroup
    w->L->body(w->L->buffers, f->c);
    thread_exit(w, f);
    park(w, f);
  }
}

// One mapping holds every fiber stack of a worker; each stack gets a guard page when first used.
bool prepare_fiber(Worker& w, Fiber& f, int index) {
  if (f.stack) return true;
  size_t pg = page_size(), len = round_up(size_t(w.L->opt.stack_kib) << 10, pg) + pg;
  if (!w.stacks) {
    w.stacks_len = len * w.L->tg.x * w.L->tg.y * w.L->tg.z;
    void* m = mmap(nullptr, w.stacks_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      record(kResourceError, "cannot map %zu bytes of fiber stacks: %s", w.stacks_len,
             strerror(errno));
      return false;
    }
    w.stacks = static_cast<char*>(m);
    getcontext(&w.uc_template);  // once: getcontext costs a syscall
  }
  f.stack = w.stacks + len * size_t(index);
  mprotect(f.stack, pg, PROT_NONE);  // stacks grow down into the guard page
  f.uc = w.uc_template;
  f.uc.uc_stack.ss_sp = f.stack + pg;
  f.uc.uc_stack.ss_size = len - pg;
  f.uc.uc_link = nullptr;
  makecontext(&f.uc, fiber_main, 0);
  return true;
}

void format_lanes(uint32_t mask, char* out, size_t n) {  // "0-15,17"
  size_t k = 0;
  out[0] = 0;
  for (int i = 0; i < kSimdWidth && k < n; ++i) {
    if (!(mask >> i & 1)) continue;
    int j = i;
    while (j + 1 < kSimdWidth && (mask >> (j + 1) & 1)) ++j;
    k += size_t(snprintf(out + k, n - k, j > i ? "%s%d-%d" : "%s%d", k ? "," : "", i, j));
    i = j;
  }
}

// ---- threadgroup scheduling
uint64_t next_random(uint64_t& s) {  // splitmix64
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void report_deadlock(Worker& w) {
  struct Waiters {
    Site site;
    int count;
  } sites[4];
  int nsites = 0, more = 0;
  for (int i = 0; i < w.n; ++i) {
    Fiber& f = w.fibers[i];
    if (f.state == kDone) continue;
    int k = 0;
    while (k < nsites && !same_site(sites[k].site, f.site)) ++k;
    if (k == nsites) {
      if (nsites == 4) {
        ++more;
        continue;
      }
      sites[nsites++] = {f.site, 0};
    }
    sites[k].count++;
  }
  char text[512];
  size_t len = 0;
  for (int k = 0; k < nsites && len < sizeof text; ++k)
    len += size_t(snprintf(text + len, sizeof text - len, "%s%d threads at %s (%s:%d)",
                           k ? ", " : "", sites[k].count, sites[k].site.op, sites[k].site.file,
                           sites[k].site.line));
  record(kSyncError,
         "deadlock in threadgroup (%u,%u,%u): %s%s; every thread of a threadgroup must reach the "
         "same threadgroup_barrier, and every active lane of a simdgroup the same simd-group "
         "function",
         w.fibers[0].c.threadgroup_position_in_grid.x, w.fibers[0].c.threadgroup_position_in_grid.y,
         w.fibers[0].c.threadgroup_position_in_grid.z, text, more ? " and others" : "");
}

void check_threadgroup_slack(Worker& w) {
  for (int i = 0; i < w.ntg; ++i) {
    TgArray& a = w.tg[i];
    if (a.gen != w.gen) continue;
    for (char* p = a.inner; p < a.data; ++p) {
      if (static_cast<unsigned char>(*p) != kPoison) {
        if (claim_failure()) {
          Report& r = *g_report;
          r.status = kOutOfBounds;
          r.buffer = -1;
          r.access = kWrite;
          r.offset = p - a.data;
          r.nbytes = int64_t(a.bytes);
          snprintf(r.region, sizeof r.region, "%s", a.name);
        }
        return;
      }
    }
  }
}

// Each simdgroup in turn runs until none of its lanes can: the lanes of a simd-group function
// release each other, so only a barrier (or the end) stops it, and simdgroup 0 reaches its next
// barrier before simdgroup 1 starts. A missing barrier then leaves one simdgroup a phase ahead.
void run_depth_first(Worker& w, int nsg) {
  for (;;) {
    bool ran = false;
    for (int s = 0; s < nsg; ++s) {
      int end = (s + 1) * kSimdWidth < w.n ? (s + 1) * kSimdWidth : w.n;
      for (bool again = true; again;) {
        again = false;
        for (int i = s * kSimdWidth; i < end; ++i) {
          Fiber* f = &w.fibers[i];
          if (f->state != kRunnable) continue;
          again = ran = true;
          tl_f = f;
          enter(&w, f);
          tl_f = nullptr;
          if (failed()) return;
        }
      }
    }
    if (w.alive == 0) return;
    if (!ran) return report_deadlock(w);
  }
}

void run_group(Worker& w, uint64_t t) {
  const Launch& L = *w.L;
  Dim3 pos{uint32_t(t % L.ntg.x), uint32_t(t / L.ntg.x % L.ntg.y),
           uint32_t(t / (uint64_t(L.ntg.x) * L.ntg.y))};
  auto edge = [](uint32_t tg, uint32_t grid, uint32_t p) {  // partial threadgroups at the edges
    return grid - p * tg < tg ? grid - p * tg : tg;
  };
  Dim3 act{edge(L.tg.x, L.grid.x, pos.x), edge(L.tg.y, L.grid.y, pos.y),
           edge(L.tg.z, L.grid.z, pos.z)};
  int n = int(act.x * act.y * act.z), nsg = (n + kSimdWidth - 1) / kSimdWidth;
  w.gen++;
  w.tg_used = 0;
  races_group_start(t);
  for (int s = 0; s < nsg; ++s) {
    SimdGroup& g = w.sg[s];
    g.alive = n - s * kSimdWidth < kSimdWidth ? n - s * kSimdWidth : kSimdWidth;
    g.arrived = 0;
    g.gen = 0;
    g.mask[0] = g.mask[1] = 0;
  }
  for (int i = 0; i < n; ++i) {
    Fiber& f = w.fibers[i];
    if (!prepare_fiber(w, f, i)) return;
    f.state = kRunnable;
    f.c = L.proto;
    ThreadCtx& c = f.c;
    Dim3 p{uint32_t(i) % act.x, uint32_t(i) / act.x % act.y, uint32_t(i) / (act.x * act.y)};
    c.thread_position_in_threadgroup = p;
    c.threadgroup_position_in_grid = pos;
    c.thread_position_in_grid = {pos.x * L.tg.x + p.x, pos.y * L.tg.y + p.y, pos.z * L.tg.z + p.z};
    c.threads_per_threadgroup = act;
    c.thread_index_in_threadgroup = uint32_t(i);
    c.thread_index_in_simdgroup = uint32_t(i % kSimdWidth);
    c.simdgroup_index_in_threadgroup = uint32_t(i / kSimdWidth);
    c.simdgroups_per_threadgroup = uint32_t(nsg);
    c.thread_index_in_quadgroup = uint32_t(i % 4);
    c.quadgroup_index_in_threadgroup = uint32_t(i / 4);
    c.quadgroups_per_threadgroup = uint32_t((n + 3) / 4);
  }
  w.n = w.alive = n;
  w.exited = w.bar_arrived = 0;
  bool reverse = L.opt.schedule == kReverse, random = L.opt.schedule == kRandom;
  for (int i = 0; i < n; ++i) w.order[i] = reverse ? n - 1 - i : i;
  w.rng = (uint64_t(L.opt.seed) << 32) ^ t;
  if (L.opt.schedule == kDepthFirst) {
    run_depth_first(w, nsg);
    if (!failed()) check_threadgroup_slack(w);
    return;
  }
  for (;;) {
    if (random)
      for (int i = n - 1; i > 0; --i) {
        int j = int(next_random(w.rng) % uint64_t(i + 1)), tmp = w.order[i];
        w.order[i] = w.order[j];
        w.order[j] = tmp;
      }
    bool ran = false;
    for (int k = 0; k < n; ++k) {
      Fiber* f = &w.fibers[w.order[k]];
      if (f->state != kRunnable) continue;
      ran = true;
      tl_f = f;
      enter(&w, f);
      tl_f = nullptr;
      if (failed()) return;
    }
    if (w.alive == 0) break;
    if (!ran) {
      report_deadlock(w);
      return;
    }
  }
  check_threadgroup_slack(w);
}

// ---- workers
void setup_altstack(Worker& w) {  // the fault handler must run even after a stack overflow
  size_t len = 64 << 10;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  stack_t ss{};
  ss.ss_sp = p;
  ss.ss_size = len;
  if (sigaltstack(&ss, nullptr) == 0) w.altstack = p;
}

void* worker_main(void* arg) {
  Launch& L = *static_cast<Launch*>(arg);
  void* wm = mmap(nullptr, sizeof(Worker), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
  void* fm = mmap(nullptr, sizeof(Fiber) * kMaxThreads, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (wm == MAP_FAILED || fm == MAP_FAILED) {
    record(kResourceError, "cannot allocate a worker: %s", strerror(errno));
    return nullptr;
  }
  Worker& w = *static_cast<Worker*>(wm);
  w.L = &L;
  w.fibers = static_cast<Fiber*>(fm);
  tl_w = &w;
  if (L.opt.isolate) setup_altstack(w);
  void* races = races_worker_start(L);
  for (uint64_t t; !failed() && (t = __atomic_fetch_add(&L.next, 1, __ATOMIC_RELAXED)) < L.total;)
    run_group(w, t);
  races_worker_end(races);
  tl_w = nullptr;
  if (w.stacks) munmap(w.stacks, w.stacks_len);
  for (int i = 0; i < w.ntg; ++i) munmap(w.tg[i].map, w.tg[i].map_len);
  if (w.altstack) {
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    munmap(w.altstack, 64 << 10);
  }
  munmap(fm, sizeof(Fiber) * kMaxThreads);
  munmap(wm, sizeof(Worker));
  return nullptr;
}

}  // namespace

int run_launch(Launch& L) {
  int nw = L.opt.workers < 1 ? 1 : L.opt.workers > kMaxWorkers ? kMaxWorkers : L.opt.workers;
  if (uint64_t(nw) > L.total) nw = int(L.total);
  pthread_t th[kMaxWorkers];
  int started = 0;
  for (int i = 1; i < nw; ++i)
    if (pthread_create(&th[started], nullptr, worker_main, &L) == 0) ++started;
  worker_main(&L);
  for (int i = 0; i < started; ++i) pthread_join(th[i], nullptr);
  return failed() ? g_report->status : kOk;
}

void note_thread(Report& r) {
  if (Fiber* f = tl_f) {
    const ThreadCtx& c = f->c;
    r.has_thread = 1;
    r.thread[0] = c.thread_position_in_grid.x;
    r.thread[1] = c.thread_position_in_grid.y;
    r.thread[2] = c.thread_position_in_grid.z;
    r.group[0] = c.threadgroup_position_in_grid.x;
    r.group[1] = c.threadgroup_position_in_grid.y;
    r.group[2] = c.threadgroup_position_in_grid.z;
  }
}

bool in_stack_guard(uintptr_t a) {
  Fiber* f = tl_f;
  return f && a >= uintptr_t(f->stack) && a < uintptr_t(f->stack) + page_size();
}

ThreadCtx* current_ctx() { return tl_f ? &tl_f->c : nullptr; }

void abandon_current() { abandon_fiber(); }

void barrier(const Site& site) {
  Worker* w = tl_w;
  Fiber* f = tl_f;
  if (w->bar_arrived > 0 && !same_site(w->bar_site, site)) {
    record(kSyncError,
           "divergent threadgroup_barrier: %d threads wait at threadgroup_barrier (%s:%d) while "
           "this thread reached threadgroup_barrier (%s:%d)",
           w->bar_arrived, w->bar_site.file, w->bar_site.line, site.file, site.line);
    abandon_fiber();
  }
  if (w->bar_arrived == 0) w->bar_site = site;
  f->state = kAtBarrier;
  f->site = site;
  if (++w->bar_arrived == w->alive) {
    if (w->exited > 0 && w->L->opt.strict) {
      record(kSyncError,
             "divergent threadgroup_barrier (%s:%d): reached by %d threads while %d threads of the "
             "threadgroup had already returned",
             site.file, site.line, w->bar_arrived, w->exited);
      abandon_fiber();
    }
    release_barrier(*w);
  }
  park(w, f);  // the last arrival parks too, so the schedule decides who runs first
}

SimdView simd_exchange(const Site& site, const void* value, size_t size) {
  Worker* w = tl_w;
  Fiber* f = tl_f;
  int sgid = int(f->c.simdgroup_index_in_threadgroup);
  uint32_t lane = f->c.thread_index_in_simdgroup;
  SimdGroup& g = w->sg[sgid];
  int b = int(g.gen & 1);
  if (g.arrived > 0 && !same_site(g.site, site)) {
    char lanes[160];
    format_lanes(g.mask[b], lanes, sizeof lanes);
    record(kSyncError,
           "divergent simd-group functions in simdgroup %d: lanes %s wait at %s (%s:%d) while lane "
           "%u reached %s (%s:%d)",
           sgid, lanes, g.site.op, g.site.file, g.site.line, lane, site.op, site.file, site.line);
    abandon_fiber();
  }
  if (g.arrived == 0) g.site = site;
  if (size) memcpy(g.slot[b][lane], value, size);
  g.mask[b] |= 1u << lane;
  f->state = kAtSimd;
  f->site = site;
  if (++g.arrived == g.alive) release_simd(g, *w, sgid);
  park(w, f);
  return SimdView{&g.slot[b][0][0], g.mask[b], lane, uint32_t(sgid), g.seq};
}

void* threadgroup_alloc(int key, size_t bytes, const char* name) {
  Worker& w = *tl_w;
  TgArray* a = nullptr;
  for (int i = 0; i < w.ntg && !a; ++i)
    if (w.tg[i].key == key && w.tg[i].bytes == bytes) a = &w.tg[i];
  if (!a) {
    if (w.ntg == kMaxTgArrays) {
      record(kResourceError, "more than %d threadgroup variables", kMaxTgArrays);
      abandon_fiber();
    }
    Mapping m;
    if (!map_guarded(bytes, page_size(), false, m)) {
      record(kResourceError, "cannot map threadgroup variable `%s`", name);
      abandon_fiber();
    }
    a = &w.tg[w.ntg++];
    *a = TgArray{key, bytes, m.map, m.inner, m.data, m.map_len, m.inner_len, 0, name};
    add_region(m, bytes, -1, name);
    races_threadgroup_array(m.data, bytes, name);
  }
  if (a->gen != w.gen) {  // first use in this threadgroup: fresh poison
    a->gen = w.gen;
    memset(a->inner, kPoison, a->inner_len);
    w.tg_used += bytes;
    counters_threadgroup_bytes(w.tg_used);
    if (w.tg_used > kThreadgroupMemoryLimit) {
      record(kResourceError,
             "threadgroup memory of %zu bytes (up to `%s`) exceeds the %zu bytes of Apple GPUs",
             w.tg_used, name, kThreadgroupMemoryLimit);
      abandon_fiber();
    }
  }
  return a->data;
}

}  // namespace msl_rt
