// msl_counters.cpp -- performance counters of emulated kernels (Options.counters).
//
// msl_races.cpp's access hooks pass every load and store here: bytes per buffer and load width,
// loads of program-scope constant data, threadgroup traffic. Lanes of a simdgroup run the same
// instructions, so lane A's n-th access at a code address and lane B's n-th access there are one
// SIMD instruction: its device loads touch some 128-byte cache lines, its threadgroup accesses
// some banks. Threadgroup memory is modelled as 32 banks of 4 bytes (arrays start on a 128-byte
// boundary); an instruction takes as many wavefronts as the bank it hits with the most distinct
// words (one word read by many lanes is a broadcast). simdgroup_load/store are counted whole, with
// the 8x8 lane layout of Apple GPUs, by count_matrix.
#include "msl_internal.h"  // first: it sets feature macros for the system headers

#include <link.h>

#include <algorithm>
#include <unordered_map>
#include <utility>
#include <vector>

namespace msl_rt {

namespace {

constexpr uint32_t kLineBytes = 128, kBanks = 32, kBankBytes = 4;
constexpr int kMaxTg = 64;

struct Span {
  uintptr_t lo, len;
};
Span g_buffers[kCountedBuffers];  // every buffer
int g_nbuffers;
Span g_image;  // the kernel library's loaded segments: program-scope constant data lives there
uintptr_t g_base;

struct Instr {
  bool tg, write, matrix;
  int region;  // device buffer index, or threadgroup array index
  std::vector<std::pair<uint64_t, uint32_t>> spans;  // (offset in the region, bytes) per lane
};

struct CountWorker {
  Counters c;  // this worker's share, added to the report at its end
  Span tg[kMaxTg];
  int ntg;
  std::unordered_map<uint64_t, uint32_t> seen;  // (thread, pc) -> accesses so far
  std::unordered_map<uint64_t, Instr> instrs;   // (simdgroup, pc, instance) -> its accesses
};

// Default TLS model, as in msl_races.cpp: many kernel libraries share one process.
thread_local CountWorker* tl_cw;
thread_local bool tl_in_matrix;  // inside a simdgroup_load/store's element-wise copy

int find_image(dl_phdr_info* info, size_t, void*) {
  if (uintptr_t(info->dlpi_addr) != g_base) return 0;
  uintptr_t hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_LOAD)
      hi = std::max<uintptr_t>(hi, info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz);
  g_image = {g_base, hi};
  return 1;
}

int width_class(size_t size) {
  return size >= 16 ? 4 : size >= 8 ? 3 : size >= 4 ? 2 : size >= 2 ? 1 : 0;
}

uint64_t merged_bytes(std::vector<std::pair<uint64_t, uint32_t>>& spans) {
  std::sort(spans.begin(), spans.end());
  uint64_t total = 0, end = 0;
  for (auto& [off, n] : spans) {
    uint64_t lo = off > end ? off : end, hi = off + n;
    if (hi > lo) total += hi - lo;
    if (hi > end) end = hi;
  }
  return total;
}

void tally(Counters& c, Instr& in) {
  if (!in.tg) {
    std::vector<uint64_t> lines;
    for (auto& [off, n] : in.spans)
      for (uint64_t l = off / kLineBytes; l <= (off + n - 1) / kLineBytes; ++l) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    c.load_instrs[in.region]++;
    c.lines[in.region] += uint64_t(std::unique(lines.begin(), lines.end()) - lines.begin());
    c.min_lines[in.region] += (merged_bytes(in.spans) + kLineBytes - 1) / kLineBytes;
    return;
  }
  std::vector<uint64_t> words;
  for (auto& [off, n] : in.spans)
    for (uint64_t w = off / kBankBytes; w <= (off + n - 1) / kBankBytes; ++w) words.push_back(w);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  uint32_t per_bank[kBanks] = {};
  uint32_t most = 0;
  for (uint64_t w : words) most = std::max(most, ++per_bank[w % kBanks]);
  int k = in.matrix ? 1 : 0;
  c.tg_instrs[k]++;
  c.tg_wavefronts[k] += most;
  c.tg_min_wavefronts[k] += (words.size() + kBanks - 1) / kBanks;
}

void flush_instrs(CountWorker& cw) {
  for (auto& [key, in] : cw.instrs) tally(cw.c, in);
  cw.instrs.clear();
  cw.seen.clear();
}

void group_access(CountWorker& cw, uint32_t thread, uint32_t pc, bool tg, int region,
                  uint64_t off, size_t size, bool write) {
  uint32_t n = cw.seen[uint64_t(thread) << 32 | pc]++;
  uint64_t key = (uint64_t(n) << 40) ^ (uint64_t(pc) << 6) ^ uint64_t(thread / kSimdWidth);
  Instr& in = cw.instrs[key];
  if (in.spans.empty()) in = Instr{tg, write, false, region, {}};
  if (in.tg == tg && in.region == region) in.spans.emplace_back(off, uint32_t(size));
}

void add_counters(const Counters& from) {
  Counters& to = g_report->counters;
  auto add = [](uint64_t& t, uint64_t v) { __atomic_fetch_add(&t, v, __ATOMIC_RELAXED); };
  for (int i = 0; i < kCountedBuffers; ++i) {
    add(to.read_bytes[i], from.read_bytes[i]);
    add(to.write_bytes[i], from.write_bytes[i]);
    for (int k = 0; k < 5; ++k) add(to.loads[i][k], from.loads[i][k]);
    add(to.load_instrs[i], from.load_instrs[i]);
    add(to.lines[i], from.lines[i]);
    add(to.min_lines[i], from.min_lines[i]);
  }
  for (int k = 0; k < 2; ++k) {
    add(to.tg_instrs[k], from.tg_instrs[k]);
    add(to.tg_wavefronts[k], from.tg_wavefronts[k]);
    add(to.tg_min_wavefronts[k], from.tg_min_wavefronts[k]);
  }
  add(to.constant_loads, from.constant_loads);
  add(to.tg_read_bytes, from.tg_read_bytes);
  add(to.tg_write_bytes, from.tg_write_bytes);
  uint64_t seen = __atomic_load_n(&to.tg_bytes, __ATOMIC_RELAXED);
  while (from.tg_bytes > seen &&
         !__atomic_compare_exchange_n(&to.tg_bytes, &seen, from.tg_bytes, true, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
  }
}

}  // namespace

void counters_setup(const Launch& L, const Mapping* maps, const Buffer* bufs, int n,
                    uintptr_t base) {
  g_nbuffers = 0;
  if (!L.opt.counters) return;
  g_base = base;
  dl_iterate_phdr(find_image, nullptr);
  for (int i = 0; i < n && i < kCountedBuffers; ++i)
    g_buffers[g_nbuffers++] = {uintptr_t(maps[i].data), bufs[i].nbytes};
}

void counters_worker_start(const Launch& L) {
  if (L.opt.counters) tl_cw = new CountWorker();
}

void counters_worker_end() {
  if (CountWorker* cw = tl_cw) {
    flush_instrs(*cw);
    add_counters(cw->c);
    delete cw;
  }
  tl_cw = nullptr;
}

void counters_group_start() {
  if (CountWorker* cw = tl_cw) flush_instrs(*cw);  // instruction instances are per threadgroup
}

void counters_threadgroup_array(const void* data, size_t bytes) {
  CountWorker* cw = tl_cw;
  if (cw && cw->ntg < kMaxTg && bytes) cw->tg[cw->ntg++] = {uintptr_t(data), bytes};
}

void counters_threadgroup_bytes(size_t bytes) {
  if (CountWorker* cw = tl_cw) cw->c.tg_bytes = std::max<uint64_t>(cw->c.tg_bytes, bytes);
}

void counters_access(uintptr_t a, size_t size, bool write, uint32_t pc) {
  CountWorker* cw = tl_cw;
  if (!cw || tl_in_matrix) return;  // count_matrix counts the whole simdgroup's access
  Counters& c = cw->c;
  const ThreadCtx* ctx = current_ctx();
  uint32_t thread = ctx ? ctx->thread_index_in_threadgroup : 0;
  for (int i = 0; i < cw->ntg; ++i)
    if (a - cw->tg[i].lo < cw->tg[i].len) {
      (write ? c.tg_write_bytes : c.tg_read_bytes) += size;
      return group_access(*cw, thread, pc, true, i, a - cw->tg[i].lo, size, write);
    }
  for (int i = 0; i < g_nbuffers; ++i)
    if (a - g_buffers[i].lo < g_buffers[i].len) {
      if (write) {
        c.write_bytes[i] += size;
        return;
      }
      c.read_bytes[i] += size;
      c.loads[i][width_class(size)]++;
      return group_access(*cw, thread, pc, false, i, a - g_buffers[i].lo, size, false);
    }
  if (!write && a - g_image.lo < g_image.len) c.constant_loads++;
}

void matrix_scope(bool inside) { tl_in_matrix = inside; }

// The 8x8 layout (as MLX's steel MMA fragments use it): lane l holds row (l/4 & 4) + (l/2 % 4),
// column 2 (l/4 & 2) + 2 (l % 2) and the next one. Other shapes: 2 row-major elements per lane.
void count_matrix(const void* p, int elem_bytes, uint64_t elements_per_row, uint32_t origin_x,
                  uint32_t origin_y, bool transpose, int rows, int cols, bool store) {
  CountWorker* cw = tl_cw;
  if (!cw) return;
  uintptr_t base = uintptr_t(p);
  auto element = [&](int i, int j) {
    uint64_t r = origin_y + uint64_t(transpose ? j : i), c = origin_x + uint64_t(transpose ? i : j);
    return base + (r * elements_per_row + c) * uint64_t(elem_bytes);
  };
  uint64_t bytes = uint64_t(rows) * cols * elem_bytes;
  Instr in{false, store, true, -1, {}};
  for (int e = 0; e < rows * cols; e += 2) {
    int lane = e / 2 % kSimdWidth, i = e / cols, j = e % cols;
    if (rows == 8 && cols == 8) {
      i = ((lane / 4) & 4) + (lane / 2) % 4;
      j = 2 * ((lane / 4) & 2) + 2 * (lane % 2);
    }
    for (int k = 0; k < 2 && j + k < cols; ++k) in.spans.emplace_back(element(i, j + k), elem_bytes);
  }
  Counters& c = cw->c;
  for (int t = 0; t < cw->ntg; ++t)
    if (base - cw->tg[t].lo < cw->tg[t].len) {
      (store ? c.tg_write_bytes : c.tg_read_bytes) += bytes;
      in.tg = true;
      in.region = t;
      for (auto& sp : in.spans) sp.first -= cw->tg[t].lo;
      return tally(c, in);
    }
  for (int b = 0; b < g_nbuffers; ++b)
    if (base - g_buffers[b].lo < g_buffers[b].len) {
      if (store) {
        c.write_bytes[b] += bytes;
        return;
      }
      c.read_bytes[b] += bytes;
      c.loads[b][width_class(size_t(2 * elem_bytes))] += uint64_t(rows) * cols / 2;
      in.region = b;
      for (auto& sp : in.spans) sp.first -= g_buffers[b].lo;
      return tally(c, in);
    }
}

}  // namespace msl_rt
