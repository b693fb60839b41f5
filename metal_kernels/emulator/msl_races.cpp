// msl_races.cpp -- data-race and uninitialised-read detection for emulated kernels.
//
// Kernel translation units are compiled with -fsanitize=thread but linked without its runtime:
// the compiler then calls the __tsan_* hooks below on every load and store, and these keep shadow
// state for the memory that threads share (threadgroup arrays, writable device buffers). Within one
// barrier interval, two lanes of different simdgroups touching one address with at least one write
// is a race; so is a device address written by one threadgroup and touched by another. Lanes of one
// simdgroup run in lockstep on the GPU, so they never race with each other here.
#include "msl_internal.h"  // first: it sets feature macros for the system headers

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

namespace msl_rt {

namespace {

struct Shadow {           // one per granule of tracked memory
  uint32_t w_epoch;       // interval of the last write (epochs are unique per launch)
  uint32_t r_epoch;       // interval the reader fields describe
  uint32_t w_pc, r_pc[2];  // code offsets in the kernel library of the accesses below
  uint32_t r_sgmask;      // simdgroups that read in r_epoch
  uint32_t w_group, r_group;  // threadgroup (linear) of the last writer / reader; device only
  uint16_t w_thread, r_thread[2];  // r_thread[1]: a reader of another simdgroup than r_thread[0]
};

struct Tracked {
  uintptr_t lo, len;
  uint32_t granule;  // bytes per shadow entry: the element size
  bool device;
  int buffer;  // device buffer index, -1 for threadgroup memory
  const char* name;
  Shadow* shadow;
};

constexpr int kMaxDevice = 64, kMaxTg = 64;
Tracked g_device[kMaxDevice];
int g_ndevice;
uint32_t g_epoch;  // last epoch handed out; __atomic
uintptr_t g_base;  // load address of this library, to report code offsets

struct RaceWorker {
  Tracked tg[kMaxTg];
  int ntg;
  uint32_t epoch, group_epoch, group;
  bool races, count;
};

// Default TLS model: initial-exec would be faster, but every kernel library loaded into one process
// takes static TLS, and a test session loads hundreds ("cannot allocate memory in static TLS").
thread_local RaceWorker* tl_rw;

Shadow* new_shadow(size_t n) {  // n entries; shadow_bytes() gives the length mapped
  void* m = mmap(nullptr, n * sizeof(Shadow) + 1, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return m == MAP_FAILED ? nullptr : static_cast<Shadow*>(m);
}

size_t shadow_bytes(const Tracked& t) {
  return (t.len + t.granule - 1) / t.granule * sizeof(Shadow) + 1;
}

uint32_t next_epoch() { return __atomic_add_fetch(&g_epoch, 1, __ATOMIC_RELAXED); }

const char* kind(bool write) { return write ? "wrote" : "read"; }

void where(const Tracked& t, uintptr_t a, char* out, size_t n) {
  if (t.device)
    snprintf(out, n, "output buffer %d (`%s`) at element %zu", t.buffer, t.name ? t.name : "?",
             size_t((a - t.lo) / t.granule));
  else
    snprintf(out, n, "threadgroup memory `%s` at byte %zu", t.name, size_t(a - t.lo));
}

// "@pc:0x...@" markers are turned into kernel file:line by runtime.py (addr2line).
void report_race(const Tracked& t, uintptr_t a, const ThreadCtx& c, bool write, uint32_t pc,
                 uint32_t other_thread, uint32_t other_group, bool other_write, uint32_t other_pc) {
  if (!claim_failure()) return;
  Report& r = *g_report;
  r.status = kRaceError;
  note_thread(r);
  char at[160];
  where(t, a, at, sizeof at);
  uint32_t me = c.thread_index_in_threadgroup;
  uint32_t group = uint32_t(c.threadgroup_position_in_grid.x +
                            c.threadgroups_per_grid.x * (c.threadgroup_position_in_grid.y +
                                                         c.threadgroups_per_grid.y *
                                                             c.threadgroup_position_in_grid.z));
  const char* scope = other_group != group
                          ? "another threadgroup, and threadgroups never synchronise"
                          : "the same barrier interval, with no threadgroup_barrier between";
  snprintf(r.message, sizeof r.message,
           "data race on %s: thread %u (simdgroup %u) of threadgroup %u %s it @pc:0x%x@, and "
           "thread %u (simdgroup %u) of threadgroup %u %s it @pc:0x%x@ in %s",
           at, me, me / kSimdWidth, group, kind(write), pc, other_thread,
           other_thread / kSimdWidth, other_group, kind(other_write), other_pc, scope);
}

void report_uninitialised(const Tracked& t, uintptr_t a, const ThreadCtx& c, uint32_t pc) {
  if (!claim_failure()) return;
  Report& r = *g_report;
  r.status = kRaceError;
  note_thread(r);
  char at[160];
  where(t, a, at, sizeof at);
  snprintf(r.message, sizeof r.message,
           "read of uninitialised %s by thread %u (simdgroup %u) @pc:0x%x@: no thread of this "
           "threadgroup has written it yet",
           at, c.thread_index_in_threadgroup, c.thread_index_in_threadgroup / kSimdWidth, pc);
}

void check(RaceWorker& rw, const Tracked& t, uintptr_t a, size_t size, bool write, uint32_t pc) {
  const ThreadCtx* cp = current_ctx();
  if (!cp) return;
  const ThreadCtx& c = *cp;
  uint32_t me = c.thread_index_in_threadgroup, sg = me / kSimdWidth, E = rw.epoch, G = rw.group;
  size_t first = (a - t.lo) / t.granule, last = (a + size - 1 - t.lo) / t.granule;
  if (last * t.granule >= t.len) last = (t.len - 1) / t.granule;
  for (size_t i = first; i <= last; ++i) {
    Shadow& s = t.shadow[i];
    bool fresh_w = t.device ? s.w_epoch == 0 : s.w_epoch < rw.group_epoch;
    bool fresh_r = t.device ? s.r_epoch == 0 : s.r_epoch < rw.group_epoch;
    uintptr_t at = t.lo + i * t.granule;
    if (!fresh_w) {
      bool other_group = t.device && s.w_group != G;
      if (other_group || (s.w_epoch == E && s.w_thread / kSimdWidth != sg)) {
        report_race(t, at, c, write, pc, s.w_thread, s.w_group, true, s.w_pc);
        abandon_current();
      }
    } else if (!write && !t.device) {
      report_uninitialised(t, at, c, pc);
      abandon_current();
    }
    if (write && !fresh_r) {
      bool other_group = t.device && s.r_group != G;
      bool other_sg = s.r_epoch == E && (s.r_sgmask & ~(1u << sg));
      if (other_group || other_sg) {
        int k = s.r_thread[0] / kSimdWidth != sg || other_group ? 0 : 1;
        report_race(t, at, c, true, pc, s.r_thread[k], s.r_group, false, s.r_pc[k]);
        abandon_current();
      }
    }
    if (write) {
      s.w_epoch = E;
      s.w_thread = uint16_t(me);
      s.w_group = G;
      s.w_pc = pc;
    } else {
      if (s.r_epoch != E || (t.device && s.r_group != G)) {
        s.r_epoch = E;
        s.r_sgmask = 0;
        s.r_thread[0] = uint16_t(me);
        s.r_pc[0] = pc;
        s.r_group = G;
      } else if (!(s.r_sgmask & (1u << sg)) && s.r_thread[0] / kSimdWidth != sg &&
                 s.r_sgmask == (1u << (s.r_thread[0] / kSimdWidth))) {
        s.r_thread[1] = uint16_t(me);
        s.r_pc[1] = pc;
      }
      s.r_sgmask |= 1u << sg;
    }
  }
}

inline void on_access(void* p, size_t size, bool write, void* ret) {
  RaceWorker* rw = tl_rw;
  if (!rw) return;
  uintptr_t a = uintptr_t(p);
  uint32_t pc = uint32_t(uintptr_t(ret) - g_base - 1);  // inside the access's call instruction
  if (rw->count) counters_access(a, size, write, pc);
  if (!rw->races) return;
  for (int i = 0; i < rw->ntg; ++i)
    if (a - rw->tg[i].lo < rw->tg[i].len) return check(*rw, rw->tg[i], a, size, write, pc);
  for (int i = 0; i < g_ndevice; ++i)
    if (a - g_device[i].lo < g_device[i].len) return check(*rw, g_device[i], a, size, write, pc);
}

}  // namespace

void races_setup(const Launch& L, const Mapping* maps, const Buffer* bufs, int n) {
  for (int i = 0; i < g_ndevice; ++i)  // an in-process launch reuses the globals
    munmap(g_device[i].shadow, shadow_bytes(g_device[i]));
  g_ndevice = 0;
  g_epoch = 0;
  if (!L.opt.races && !L.opt.counters) return counters_setup(L, maps, bufs, n, 0);
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&races_setup), &info)) g_base = uintptr_t(info.dli_fbase);
  counters_setup(L, maps, bufs, n, g_base);
  if (!L.opt.races) return;
  for (int i = 0; i < n && g_ndevice < kMaxDevice; ++i) {
    if (!bufs[i].writable || !bufs[i].nbytes) continue;
    uint32_t granule = bufs[i].itemsize > 0 ? uint32_t(bufs[i].itemsize) : 1;
    Tracked& t = g_device[g_ndevice];
    t = Tracked{uintptr_t(maps[i].data), bufs[i].nbytes, granule, true, i, nullptr, nullptr};
    t.shadow = new_shadow((bufs[i].nbytes + granule - 1) / granule);
    if (t.shadow) ++g_ndevice;
  }
}

void* races_worker_start(const Launch& L) {
  if (!L.opt.races && !L.opt.counters) return nullptr;
  void* m = mmap(nullptr, sizeof(RaceWorker), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  tl_rw = static_cast<RaceWorker*>(m);
  tl_rw->races = L.opt.races != 0;
  tl_rw->count = L.opt.counters != 0;
  counters_worker_start(L);
  return m;
}

void races_worker_end(void* state) {
  counters_worker_end();
  if (RaceWorker* rw = tl_rw) {
    for (int i = 0; i < rw->ntg; ++i)
      if (rw->tg[i].shadow) munmap(rw->tg[i].shadow, shadow_bytes(rw->tg[i]));
  }
  tl_rw = nullptr;
  if (state) munmap(state, sizeof(RaceWorker));
}

void races_group_start(uint64_t group) {
  counters_group_start();
  if (RaceWorker* rw = tl_rw) {
    rw->epoch = rw->group_epoch = next_epoch();
    rw->group = uint32_t(group);
  }
}

void races_barrier() {
  if (RaceWorker* rw = tl_rw) rw->epoch = next_epoch();
}

void races_threadgroup_array(const void* data, size_t bytes, const char* name) {
  counters_threadgroup_array(data, bytes);
  RaceWorker* rw = tl_rw;
  if (!rw || rw->ntg == kMaxTg || !bytes) return;
  Tracked& t = rw->tg[rw->ntg];
  t = Tracked{uintptr_t(data), bytes, 1, false, -1, name, rw->races ? new_shadow(bytes) : nullptr};
  if (t.shadow || !rw->races) ++rw->ntg;
}

}  // namespace msl_rt

// ---- the hooks -fsanitize=thread code calls (no sanitizer runtime is linked)
using msl_rt::on_access;
#define MSL_HOOK extern "C" __attribute__((visibility("default")))
#define MSL_RW(n)                                                                       \
  MSL_HOOK void __tsan_read##n(void* p) { on_access(p, n, false, __builtin_return_address(0)); } \
  MSL_HOOK void __tsan_write##n(void* p) { on_access(p, n, true, __builtin_return_address(0)); } \
  MSL_HOOK void __tsan_unaligned_read##n(void* p) {                                     \
    on_access(p, n, false, __builtin_return_address(0));                                \
  }                                                                                     \
  MSL_HOOK void __tsan_unaligned_write##n(void* p) {                                    \
    on_access(p, n, true, __builtin_return_address(0));                                 \
  }                                                                                     \
  MSL_HOOK void __tsan_volatile_read##n(void* p) {                                      \
    on_access(p, n, false, __builtin_return_address(0));                                \
  }                                                                                     \
  MSL_HOOK void __tsan_volatile_write##n(void* p) {                                     \
    on_access(p, n, true, __builtin_return_address(0));                                 \
  }
MSL_RW(1)
MSL_RW(2)
MSL_RW(4)
MSL_RW(8)
MSL_RW(16)
MSL_HOOK void __tsan_read_range(void* p, unsigned long n) {
  if (n) on_access(p, n, false, __builtin_return_address(0));
}
MSL_HOOK void __tsan_write_range(void* p, unsigned long n) {
  if (n) on_access(p, n, true, __builtin_return_address(0));
}
MSL_HOOK void __tsan_init() {}
MSL_HOOK void __tsan_func_entry(void*) {}
MSL_HOOK void __tsan_func_exit() {}
MSL_HOOK void __tsan_vptr_update(void**, void*) {}
MSL_HOOK void __tsan_vptr_read(void**) {}
MSL_HOOK void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
MSL_HOOK void __tsan_atomic_signal_fence(int) {}

// Atomics are the sanctioned way to share an address, so they are performed but not tracked.
#define MSL_ATOMICS(bits, T)                                                                  \
  MSL_HOOK T __tsan_atomic##bits##_load(const volatile T* a, int) {                           \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                               \
  }                                                                                           \
  MSL_HOOK void __tsan_atomic##bits##_store(volatile T* a, T v, int) {                        \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                                  \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_exchange(volatile T* a, T v, int) {                        \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                                        \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_fetch_add(volatile T* a, T v, int) {                       \
    return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_fetch_sub(volatile T* a, T v, int) {                       \
    return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_fetch_and(volatile T* a, T v, int) {                       \
    return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_fetch_or(volatile T* a, T v, int) {                        \
    return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST);                                          \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_fetch_xor(volatile T* a, T v, int) {                       \
    return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_fetch_nand(volatile T* a, T v, int) {                      \
    return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST);                                        \
  }                                                                                           \
  MSL_HOOK int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* c, T v, int,   \
                                                             int) {                           \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);   \
  }                                                                                           \
  MSL_HOOK int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* c, T v, int,     \
                                                           int) {                             \
    return __atomic_compare_exchange_n(a, c, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);    \
  }                                                                                           \
  MSL_HOOK T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T c, T v, int, int) {  \
    __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);         \
    return c;                                                                                 \
  }
MSL_ATOMICS(8, uint8_t)
MSL_ATOMICS(16, uint16_t)
MSL_ATOMICS(32, uint32_t)
MSL_ATOMICS(64, uint64_t)
