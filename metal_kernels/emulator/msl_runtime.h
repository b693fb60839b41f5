// msl_runtime.h -- interface of the SIMT runtime of the Metal CPU emulator.
//
// The implementation (msl_scheduler.cpp, msl_launch.cpp) is compiled once into object files linked
// into every kernel library, so that kernel translation units see only these few declarations and
// none of the POSIX headers the runtime needs (names such as `index` or `sync` would clash).
//
// Model: every GPU thread of a threadgroup is a fiber; a threadgroup runs on one OS thread and
// threadgroups are spread over worker threads. threadgroup_barrier and simd-group functions are
// rendezvous points (SIMD width 32) that also check that all threads reach the same one.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace msl_rt {

// Bump on any change to Buffer, Options, Report or the exported functions (checked by runtime.py).
constexpr int kAbiVersion = 6;
constexpr int kSimdWidth = 32;  // Apple GPUs; kernels may assume it, so does the emulator
constexpr size_t kSlotBytes = 64;  // largest value a simd-group function can exchange
constexpr int kMaxSimdgroups = 32;  // 1024 threads per threadgroup

struct Dim3 {
  uint32_t x, y, z;
};

// Values of the Metal [[attribute]] kernel parameters for one thread.
struct ThreadCtx {
  Dim3 thread_position_in_grid, thread_position_in_threadgroup, threadgroup_position_in_grid,
      threads_per_grid, threads_per_threadgroup, dispatch_threads_per_threadgroup,
      threadgroups_per_grid, grid_origin, grid_size;
  uint32_t thread_index_in_threadgroup, thread_index_in_simdgroup, simdgroup_index_in_threadgroup,
      simdgroups_per_threadgroup, dispatch_simdgroups_per_threadgroup, thread_index_in_quadgroup,
      quadgroup_index_in_threadgroup, quadgroups_per_threadgroup,
      dispatch_quadgroups_per_threadgroup, threads_per_simdgroup, thread_execution_width;
};

// Where a synchronising function was called from: kernels are compiled with #line directives, so
// `file` names the kernel's source or header and `line` is a line of that string.
struct Site {
  const char* op;
  const char* file;
  int line;
};

// The values deposited by the lanes of a simdgroup at one simd-group function call.
struct SimdView {
  const unsigned char* slots;  // kSimdWidth slots of kSlotBytes
  uint32_t mask;               // lanes that took part (lanes that returned are inactive)
  uint32_t lane;               // the calling lane
  uint32_t simdgroup;          // its simdgroup in the threadgroup
  uint64_t seq;                // this rendezvous, unique in the process
};

// ---- ABI shared with runtime.py through ctypes.
struct Buffer {
  const void* host;  // start of the bytes to copy in (and out, if writable)
  uint64_t nbytes;
  uint64_t offset;   // byte offset of element 0 inside those bytes (negative strides)
  int32_t writable;  // outputs; inputs are read-only while the kernel runs
  int32_t itemsize;  // element size: the granule of race detection
};

// kDepthFirst: a released simdgroup runs until it blocks at a barrier before the next one starts,
// so one simdgroup can run far ahead of another, as on the GPU.
enum Schedule : int32_t { kForward = 0, kReverse = 1, kRandom = 2, kDepthFirst = 3 };

struct Options {
  int32_t schedule;
  uint32_t seed;
  int32_t workers;
  int32_t strict;     // a barrier reached after some threads returned is an error
  int32_t isolate;    // run in a forked child (guard-page faults become reports)
  int32_t timeout_s;  // isolated launches only; 0 = none
  int32_t stack_kib;  // per GPU thread
  int32_t races;      // track shared memory: races and uninitialised threadgroup reads (msl_races.cpp)
  int32_t counters;   // fill Report.counters
  int32_t reserved;
};

constexpr int kCountedBuffers = 16;  // buffers beyond these are not counted

// Performance counters of one launch (Options.counters), from the same hooks as race tracking.
struct Counters {
  uint64_t read_bytes[kCountedBuffers], write_bytes[kCountedBuffers];
  uint64_t loads[kCountedBuffers][5];  // device loads by width: 1, 2, 4, 8, 16 bytes
  uint64_t constant_loads;             // program-scope `constant` data: lookup tables
  uint64_t tg_read_bytes, tg_write_bytes;
  uint64_t tg_bytes;  // threadgroup memory of one threadgroup (the largest)
  // Per simdgroup instruction (the lanes' accesses at one instance of one load or store):
  uint64_t load_instrs[kCountedBuffers];  // device loads
  uint64_t lines[kCountedBuffers];        // distinct 128-byte cache lines they touched
  uint64_t min_lines[kCountedBuffers];    // the fewest lines their bytes fit in
  // threadgroup memory, 32 banks of 4 bytes: wavefronts = the most distinct words in one bank;
  // [0] scalar and vector accesses, [1] simdgroup_load/store (8x8: 2 elements per lane)
  uint64_t tg_instrs[2], tg_wavefronts[2], tg_min_wavefronts[2];
};

enum Status : int32_t {
  kOk = 0,
  kSyncError = 1,
  kOutOfBounds = 2,
  kCrash = 3,
  kTimeout = 4,
  kInterrupted = 5,
  kSetupError = 6,
  kResourceError = 7,
  kRaceError = 8,
};

enum Access : int32_t { kUnknownAccess = 0, kRead = 1, kWrite = 2 };

struct Report {
  int32_t status, signal;
  int32_t buffer;  // index into the launch's buffers, -1 for threadgroup memory or none
  int32_t access;
  int64_t offset;  // faulting byte offset from the start of the buffer or threadgroup array
  int64_t nbytes;  // size of that buffer or array
  int32_t has_thread;
  uint32_t thread[3], group[3];
  char region[64];  // name of the threadgroup array
  char message[1024];
  Counters counters;
};

using BodyFn = void (*)(void* const* buffers, const ThreadCtx& ctx);

// Counters of a simdgroup_load/store of an R x C matrix at `p` (called by one lane), and the scope
// of the lanes' element-wise copies, which are not counted as the lanes' own accesses.
void count_matrix(const void* p, int elem_bytes, uint64_t elements_per_row, uint32_t origin_x,
                  uint32_t origin_y, bool transpose, int rows, int cols, bool store);
void matrix_scope(bool inside);

void barrier(const Site& site);
SimdView simd_exchange(const Site& site, const void* value, size_t size);
// Storage of a `threadgroup` variable, shared by the threadgroup and poisoned at its start. The end
// of the storage touches a guard page; sizeof(T[n]) keeps the start aligned for T.
void* threadgroup_alloc(int key, size_t bytes, const char* name);
int launch(BodyFn body, const Buffer* buffers, int nbuffers, const uint32_t* grid,
           const uint32_t* threadgroup, const Options* options, Report* report);

}  // namespace msl_rt

#define MSL_EXPORT extern "C" __attribute__((visibility("default")))
