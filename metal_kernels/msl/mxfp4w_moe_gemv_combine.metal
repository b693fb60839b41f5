// Decode, down projection fused with the routing-weighted sum: for token t and output row d, one
// simdgroup accumulates sum_k route[t, k] * (W2[idx[t, k], d] . act[t, k] + b2[idx[t, k], d]) and
// writes y[t, d] once, so the (T, K, D) per-expert outputs never go through memory.
// Inputs: act (T, K, I), w (E, D, I/8) u32, scales (E, D, I/32) u8, bias (E, D), idx (T, K) u32,
// route (T, K) f32. Output: y (T, D). Grid (D * 32, T, 1).
    const uint d = thread_position_in_grid.x / 32;
    const uint t = thread_position_in_grid.y;
    const uint lane = thread_index_in_simdgroup;
    const uint D = w_shape[1];
    const uint I = act_shape[2];
    const uint K = idx_shape[1];
    if (d >= D) {
        return;
    }
    const uint words_per_row = I / 8;
    const uint blocks = I / 32;
    float acc = 0.0f;
    float bias_sum = 0.0f;
    for (uint k = 0; k < K; ++k) {
        const uint e = idx[t * K + k];
        const float r = route[t * K + k];
        const device uint32_t* wr = w + (size_t(e) * D + d) * words_per_row;
        const device uint8_t* sr = scales + (size_t(e) * D + d) * blocks;
        const device T* a = act + (size_t(t) * K + k) * I;
        float part = 0.0f;
        for (uint b = lane; b < blocks; b += 32) {
            part += mxfp4_block_dot(wr + 4 * b, a + 32 * b) * e8m0_to_float(sr[b]);
        }
        acc += r * part;
        bias_sum += r * float(bias[size_t(e) * D + d]);
    }
    acc = simd_sum(acc);
    if (lane == 0) {
        y[size_t(t) * D + d] = T(acc + bias_sum);
    }
