// msl_internal.h -- declarations shared by the two halves of the runtime: msl_scheduler.cpp (fibers,
// threadgroups, synchronisation) and msl_launch.cpp (guarded buffers, the forked child, faults).
// Not seen by kernels.
#pragma once
#undef _FORTIFY_SOURCE  // glibc's __longjmp_chk rejects jumps between fiber stacks
#if defined(__APPLE__) && !defined(_XOPEN_SOURCE)
#define _XOPEN_SOURCE 700  // <ucontext.h> requires it on macOS
#define _DARWIN_C_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "msl_runtime.h"
#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

namespace msl_rt {

constexpr int kMaxThreads = 1024;
constexpr int kMaxWorkers = 64;
constexpr int kMaxRegions = 1024;
constexpr unsigned char kPoison = 0xFF;  // NaN for floats, all ones for integers

struct Launch {
  BodyFn body;
  void* const* buffers;
  Dim3 grid, tg, ntg;
  uint64_t total, next;
  Options opt;
  ThreadCtx proto;
};

// A mapping whose data ends at a guard page: [guard][slack | data][guard].
struct Mapping {
  char *map, *inner, *data;
  size_t map_len, inner_len;
};

struct Region {  // an address range the fault handler can name
  uintptr_t lo, hi, data;
  uint64_t nbytes;
  int32_t buffer;  // -1 for a threadgroup variable
  const char* name;
};

extern int g_failed;  // first failure wins; accessed with __atomic builtins
extern Report* g_report;
extern Region g_regions[kMaxRegions];
extern int g_nregions;

size_t page_size();
size_t round_up(size_t n, size_t a);
bool failed();
bool claim_failure();
__attribute__((format(printf, 2, 3))) void record(Status status, const char* fmt, ...);

// msl_scheduler.cpp
int run_launch(Launch& L);            // runs every threadgroup; returns a Status
void note_thread(Report& r);          // the GPU thread running on this OS thread, if any
bool in_stack_guard(uintptr_t addr);  // inside the guard page of that thread's stack?

ThreadCtx* current_ctx();          // the GPU thread running on this OS thread, or null
[[noreturn]] void abandon_current();  // leave that thread after a recorded failure

// msl_races.cpp (each a no-op unless Options.races)
void races_setup(const Launch& L, const Mapping* maps, const Buffer* bufs, int n);
void* races_worker_start(const Launch& L);
void races_worker_end(void* state);
void races_group_start(uint64_t group);
void races_barrier();  // a new barrier interval for this worker's threadgroup
void races_threadgroup_array(const void* data, size_t bytes, const char* name);

// msl_counters.cpp (each a no-op unless Options.counters); msl_races.cpp's hooks call them
void counters_setup(const Launch& L, const Mapping* maps, const Buffer* bufs, int n,
                    uintptr_t base);
void counters_worker_start(const Launch& L);
void counters_worker_end();
void counters_group_start();
void counters_threadgroup_array(const void* data, size_t bytes);
void counters_threadgroup_bytes(size_t bytes);
void counters_access(uintptr_t a, size_t size, bool write, uint32_t pc);

// msl_launch.cpp
bool map_guarded(size_t nbytes, size_t guard, bool shared, Mapping& m);
void add_region(const Mapping& m, uint64_t nbytes, int32_t buffer, const char* name);

}  // namespace msl_rt
