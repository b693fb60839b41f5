// Decode, down projection fused with the routing-weighted sum: for token t, one simdgroup makes
// output rows d0 .. d0+3, y[t, d] = sum_k route[t, k] * (W2[idx[t, k], d] . act[t, k] + b2[...]),
// and writes each once, so the (T, K, D) per-expert outputs never go through memory. A lane loads
// a block of act[t, k] into registers once for the 4 rows and reads each row's 16 weight bytes as
// one uint4.
// Inputs: act (T, K, I), w (E, D, I/8) u32, scales (E, D, I/32) u8, bias (E, D), idx (T, K) u32,
// route (T, K) f32. Output: y (T, D). Grid (D / 4 * 32, T, 1).
    const uint d0 = (thread_position_in_grid.x / 32) * 4;
    const uint t = thread_position_in_grid.y;
    const uint lane = thread_index_in_simdgroup;
    const uint D = w_shape[1];
    const uint I = act_shape[2];
    const uint K = idx_shape[1];
    if (d0 >= D) {
        return;  // D is a multiple of 32: rows d0 .. d0 + 3 all exist
    }
    const uint blocks = I / 32;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float bias_sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (uint k = 0; k < K; ++k) {
        const uint e = idx[t * K + k];
        const float r = route[t * K + k];
        const size_t row0 = size_t(e) * D + d0;
        const device uint4* w4 = (const device uint4*)w + row0 * blocks;
        const device uint8_t* s = scales + row0 * blocks;
        const device vec<T, 4>* a4 = (const device vec<T, 4>*)(act + (size_t(t) * K + k) * I);
        float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (uint b = lane; b < blocks; b += 32) {
            float4 av[8];
            for (uint q = 0; q < 8; ++q) {
                av[q] = float4(a4[8 * b + q]);
            }
            for (uint j = 0; j < 4; ++j) {
                const uint4 wv = w4[j * blocks + b];
                part[j] += mxfp4_block_dot4(wv, av) * e8m0_to_float(s[j * blocks + b]);
            }
        }
        for (uint j = 0; j < 4; ++j) {
            acc[j] += r * part[j];
            bias_sum[j] += r * float(bias[row0 + j]);
        }
    }
    for (uint j = 0; j < 4; ++j) {
        acc[j] = simd_sum(acc[j]);
    }
    if (lane == 0) {
        for (uint j = 0; j < 4; ++j) {
            y[size_t(t) * D + d0 + j] = T(acc[j] + bias_sum[j]);
        }
    }
