// Prefill: a tiled matrix multiply of (token, expert) pairs grouped by expert against that expert's
// MXFP4 rows, with simdgroup 8x8 matrix multiply-accumulate. One threadgroup (4 simdgroups) makes a
// 32-pair x 64-row output tile, walking K 16 values (half an MXFP4 block) per step. Simdgroups 0-1
// decode the weights (one row per thread, its block's 16 bytes in one uint4 load) into a bfloat
// tile, which holds every FP4 value times every E8M0 scale exactly; simdgroups 2-3 copy 8
// activations each into a tile of T. Each simdgroup then multiplies its 32 x 16 slice.
// Threadgroup memory stays under 8 KB (4.75 KB of tiles for float32, 3.75 KB for 16-bit T, plus
// 2.5 KB of epilogue staging): tile rows are padded by 16 bytes, so the 8 rows of every
// simdgroup_load fall in distinct banks. The next step's weights and activations are loaded into
// registers before the multiplies of the current one, so device latency overlaps the arithmetic.
// With SWIGLU the 64 rows are 32 interleaved (gate, linear) pairs and the epilogue writes 32
// SwiGLU outputs; otherwise it writes the 64 rows plus their bias, and with COMBINE weighs them by
// the pair's route weight and writes them at the pair's (token, slot) row, so that the combine
// left to do is a sum over each token's k rows.
// Inputs: x (R, Kdim) activations; rows (P,) u32 per sorted pair: the x row to read (GATHER), the
// out row to write (COMBINE), or unused; tiles (n_tiles, 3) u32: expert, first sorted pair, pair
// count (0: nothing to do); w (E, N, Kdim/8) u32; scales (E, N, Kdim/32) u8; bias (E, N);
// limit (1,) f32; route (P,) f32 route weights in (token, slot) order (COMBINE).
// Output: out (P, N / 2) with SWIGLU, else (P, N). Grid (ceil(N / 64) * 128, n_tiles, 1), TG 128.
    // 16, not 32: a padded 32-deep float32 activation tile alone would take 4.5 of the 8 KB.
    // Assumes mixed operand types in simdgroup_multiply_accumulate (T x bfloat into float).
    constexpr uint BK = 16;                    // K values per step
    constexpr uint XS = BK + 16 / sizeof(T);   // xs row stride: 16 bytes of padding
    constexpr uint WS = 64 + 8;                // ws row stride: 16 bytes of padding
    constexpr uint CS = 16 + 4;                // staging row stride (float): 16 bytes of padding
    threadgroup T xs[32 * XS];                 // [pair][k]
    threadgroup bfloat ws[BK * WS];            // [k][row]: transposed, so both operands load row-major
    threadgroup float cs[4 * 8 * CS];          // per simdgroup: 8 pairs x its 16 rows, for the epilogue

    const uint tid = thread_index_in_threadgroup;
    const uint sg = simdgroup_index_in_threadgroup;
    const uint col0 = threadgroup_position_in_grid.x * 64;
    const uint tile = threadgroup_position_in_grid.y;
    const uint e = tiles[3 * tile];
    const uint pair0 = tiles[3 * tile + 1];
    const uint count = tiles[3 * tile + 2];
    if (count == 0) {
        return;  // the whole threadgroup leaves together
    }
    const uint N = w_shape[1];
    const uint Kdim = x_shape[1];
    const uint blocks = Kdim / 32;
    const uint steps = Kdim / BK;

    simdgroup_float8x8 acc[4][2];
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 2; ++j) {
            acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
        }
    }
    // threads 0-63: weight row col0 + tid; threads 64-127: 8 activations (k8 .. k8 + 7) of a pair
    const bool loads_w = tid < 64;
    const uint row = col0 + tid;
    const bool row_ok = loads_w && row < N;
    const size_t wrow = size_t(e) * N + (row_ok ? row : 0);
    const uint my_pair = (tid - 64) / 2;
    const uint my_k8 = (tid % 2) * 8;
    const bool pair_ok = !loads_w && my_pair < count;
    const size_t x_row = pair_ok ? size_t(GATHER ? rows[pair0 + my_pair] : pair0 + my_pair) : 0;
    constexpr uint XV = sizeof(T) / 2;  // 16-byte vectors per 8 activations
    uint4 wbits = uint4(0);
    float wscale = 0.0f;
    uint4 xv[XV];
    for (uint v = 0; v < XV; ++v) {
        xv[v] = uint4(0);
    }
    if (row_ok) {
        wbits = ((const device uint4*)w)[wrow * blocks];
        wscale = e8m0_to_float(scales[wrow * blocks]);
    }
    if (pair_ok) {
        for (uint v = 0; v < XV; ++v) {
            xv[v] = ((const device uint4*)(x + x_row * Kdim + my_k8))[v];
        }
    }

    for (uint s = 0; s < steps; ++s) {
        if (loads_w) {  // half a block: words 2h, 2h + 1 of the row's uint4
            const uint h = s % 2;
            for (uint q = 0; q < 2; ++q) {
                for (uint i = 0; i < 8; ++i) {
                    ws[(8 * q + i) * WS + tid] = bfloat(FP4_E2M1[(wbits[2 * h + q] >> (4 * i)) & 0xFu] * wscale);
                }
            }
        } else {
            for (uint v = 0; v < XV; ++v) {
                ((threadgroup uint4*)(xs + my_pair * XS + my_k8))[v] = xv[v];
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        if (s + 1 < steps) {  // prefetch the next step while this one multiplies
            if (row_ok && s % 2 == 1) {
                const size_t next = wrow * blocks + (s + 1) / 2;
                wbits = ((const device uint4*)w)[next];
                wscale = e8m0_to_float(scales[next]);
            }
            if (pair_ok) {
                for (uint v = 0; v < XV; ++v) {
                    xv[v] = ((const device uint4*)(x + x_row * Kdim + (s + 1) * BK + my_k8))[v];
                }
            }
        }
        for (uint kk = 0; kk < BK / 8; ++kk) {
            simdgroup_matrix<T, 8, 8> a[4];
            simdgroup_bfloat8x8 bm[2];
            for (uint i = 0; i < 4; ++i) {
                simdgroup_load(a[i], xs + (8 * i) * XS + 8 * kk, XS);
            }
            for (uint j = 0; j < 2; ++j) {
                simdgroup_load(bm[j], ws + (8 * kk) * WS + 16 * sg + 8 * j, WS);
            }
            for (uint i = 0; i < 4; ++i) {
                for (uint j = 0; j < 2; ++j) {
                    simdgroup_multiply_accumulate(acc[i][j], a[i], bm[j], acc[i][j]);
                }
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    // epilogue: each simdgroup stages 8 pairs x its 16 rows at a time in its own part of cs; a
    // lane then reads 4 consecutive rows of one pair as a float4 (the 32 lanes hit every bank 4x)
    threadgroup float* stage = cs + sg * 8 * CS;
    const uint lane = thread_index_in_simdgroup;
    const uint r = lane / 4;
    const uint q = lane % 4;
    for (uint i = 0; i < 4; ++i) {
        for (uint j = 0; j < 2; ++j) {
            simdgroup_store(acc[i][j], stage + 8 * j, CS);
        }
        simdgroup_barrier(mem_flags::mem_threadgroup);
        const float4 v = ((threadgroup float4*)(stage + r * CS))[q];
        const uint p = 8 * i + r;
        if (SWIGLU) {  // v holds (gate, linear) of output columns 2q and 2q + 1 of this simdgroup
            const uint half_n = N / 2;
            for (uint c = 0; c < 2; ++c) {
                const uint out_col = col0 / 2 + 8 * sg + 2 * q + c;
                if (p < count && out_col < half_n) {
                    const size_t brow = size_t(e) * N + 2 * out_col;
                    const float gate = v[2 * c] + float(bias[brow]);
                    const float lin = v[2 * c + 1] + float(bias[brow + 1]);
                    out[size_t(pair0 + p) * half_n + out_col] = T(gpt_oss_swiglu(gate, lin, limit[0]));
                }
            }
        } else if (p < count) {
            const size_t dst = COMBINE ? size_t(rows[pair0 + p]) : size_t(pair0 + p);
            const float weight = COMBINE ? route[dst] : 1.0f;
            for (uint c = 0; c < 4; ++c) {
                const uint col = col0 + 16 * sg + 4 * q + c;
                if (col < N) {
                    out[dst * N + col] = T(weight * (v[c] + float(bias[size_t(e) * N + col])));
                }
            }
        }
        simdgroup_barrier(mem_flags::mem_threadgroup);
    }
