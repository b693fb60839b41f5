// Prefill: a tiled matrix multiply of (token, expert) pairs grouped by expert against that expert's
// MXFP4 rows, with simdgroup 8x8 matrix multiply-accumulate. One threadgroup (4 simdgroups) makes a
// 32-pair x 64-row output tile; K is walked one 32-value MXFP4 block at a time: the activations and
// the dequantized weights of the block (read as one uint4 per row) go to threadgroup memory, then
// each simdgroup multiplies its 32 x 16 slice. With SWIGLU the 64 rows are 32 interleaved (gate, linear) pairs and the epilogue
// writes 32 SwiGLU outputs; otherwise it writes the 64 rows plus their bias.
// Inputs: x (R, Kdim) activations; rows (P,) u32: the x row of each sorted pair (GATHER) or unused;
// tiles (n_tiles, 3) u32: expert, first sorted pair, pair count (0: nothing to do); w (E, N, Kdim/8)
// u32; scales (E, N, Kdim/32) u8; bias (E, N); limit (1,) f32.
// Output: out (P, N / 2) with SWIGLU, else (P, N). Grid (ceil(N / 64) * 128, n_tiles, 1), TG 128.
    threadgroup float xs[32 * 32];      // [pair][k]
    threadgroup float ws[32 * 64];      // [k][row]: transposed, so both operands load row-major
    threadgroup float cs[32 * 64];      // [pair][row] accumulators for the epilogue

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

    simdgroup_float8x8 acc[4][2];
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 2; ++j) {
            acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
        }
    }
    // each thread loads 8 activations of one pair; threads 0-63 also decode one weight row each
    const uint my_pair = tid / 4;
    const uint my_k0 = (tid % 4) * 8;
    const bool pair_ok = my_pair < count;
    const size_t x_row = pair_ok ? size_t(GATHER ? rows[pair0 + my_pair] : pair0 + my_pair) : 0;

    for (uint b = 0; b < blocks; ++b) {
        for (uint j = 0; j < 8; ++j) {
            xs[my_pair * 32 + my_k0 + j] = pair_ok ? float(x[x_row * Kdim + 32 * b + my_k0 + j]) : 0.0f;
        }
        if (tid < 64) {  // one weight row per thread: its block's 16 bytes in one uint4 load
            const uint row = col0 + tid;
            if (row < N) {
                const size_t wrow = size_t(e) * N + row;
                const uint4 bits = ((const device uint4*)w)[wrow * blocks + b];
                const float scale = e8m0_to_float(scales[wrow * blocks + b]);
                for (uint q = 0; q < 4; ++q) {
                    for (uint i = 0; i < 8; ++i) {
                        ws[(8 * q + i) * 64 + tid] = FP4_E2M1[(bits[q] >> (4 * i)) & 0xFu] * scale;
                    }
                }
            } else {
                for (uint k = 0; k < 32; ++k) {
                    ws[k * 64 + tid] = 0.0f;
                }
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint kk = 0; kk < 4; ++kk) {
            simdgroup_float8x8 a[4];
            simdgroup_float8x8 bm[2];
            for (uint i = 0; i < 4; ++i) {
                simdgroup_load(a[i], xs + (8 * i) * 32 + 8 * kk, 32);
            }
            for (uint j = 0; j < 2; ++j) {
                simdgroup_load(bm[j], ws + (8 * kk) * 64 + 16 * sg + 8 * j, 64);
            }
            for (uint i = 0; i < 4; ++i) {
                for (uint j = 0; j < 2; ++j) {
                    simdgroup_multiply_accumulate(acc[i][j], a[i], bm[j], acc[i][j]);
                }
            }
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    for (uint i = 0; i < 4; ++i) {
        for (uint j = 0; j < 2; ++j) {
            simdgroup_store(acc[i][j], cs + (8 * i) * 64 + 16 * sg + 8 * j, 64);
        }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (SWIGLU) {
        const uint half_n = N / 2;
        for (uint o = tid; o < 32 * 32; o += 128) {
            const uint p = o / 32;
            const uint c = o % 32;
            const uint out_col = col0 / 2 + c;
            if (p < count && out_col < half_n) {
                const size_t brow = size_t(e) * N + col0 + 2 * c;
                const float gate = cs[p * 64 + 2 * c] + float(bias[brow]);
                const float lin = cs[p * 64 + 2 * c + 1] + float(bias[brow + 1]);
                out[size_t(pair0 + p) * half_n + out_col] = T(gpt_oss_swiglu(gate, lin, limit[0]));
            }
        }
    } else {
        for (uint o = tid; o < 32 * 64; o += 128) {
            const uint p = o / 64;
            const uint c = o % 64;
            if (p < count && col0 + c < N) {
                out[size_t(pair0 + p) * N + col0 + c] = T(cs[p * 64 + c] + float(bias[size_t(e) * N + col0 + c]));
            }
        }
    }
