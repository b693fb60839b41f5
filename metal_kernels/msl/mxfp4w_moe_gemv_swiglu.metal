// Decode, gate/up: for each (token t, slot k) and output channel n, one simdgroup computes rows 2n
// (gate) and 2n+1 (linear) of expert idx[t, k] against x[t], adds the biases and applies SwiGLU.
// Lanes stride over the 32-value blocks of K, so each weight byte is read once, by one lane.
// Inputs: x (T, D), w (E, 2I, D/8) u32, scales (E, 2I, D/32) u8, bias (E, 2I), idx (T, K) u32,
// limit (1,) f32. Output: act (T, K, I). Grid (I * 32, T * K, 1); threadgroups of whole simdgroups.
    const uint n = thread_position_in_grid.x / 32;
    const uint tk = thread_position_in_grid.y;
    const uint lane = thread_index_in_simdgroup;
    const uint I = w_shape[1] / 2;
    const uint D = x_shape[1];
    const uint K = idx_shape[1];
    if (n >= I) {
        return;  // whole simdgroups return together: the grid is a multiple of 32 in x
    }
    const uint t = tk / K;
    const uint e = idx[tk];
    const uint words_per_row = D / 8;
    const uint blocks = D / 32;
    const device uint32_t* w_gate = w + (size_t(e) * 2 * I + 2 * n) * words_per_row;
    const device uint32_t* w_lin = w_gate + words_per_row;
    const device uint8_t* s_gate = scales + (size_t(e) * 2 * I + 2 * n) * blocks;
    const device uint8_t* s_lin = s_gate + blocks;
    const device T* xt = x + size_t(t) * D;

    float gate = 0.0f;
    float lin = 0.0f;
    for (uint b = lane; b < blocks; b += 32) {
        gate += mxfp4_block_dot(w_gate + 4 * b, xt + 32 * b) * e8m0_to_float(s_gate[b]);
        lin += mxfp4_block_dot(w_lin + 4 * b, xt + 32 * b) * e8m0_to_float(s_lin[b]);
    }
    gate = simd_sum(gate);
    lin = simd_sum(lin);
    if (lane == 0) {
        gate += float(bias[size_t(e) * 2 * I + 2 * n]);
        lin += float(bias[size_t(e) * 2 * I + 2 * n + 1]);
        act[size_t(tk) * I + n] = T(gpt_oss_swiglu(gate, lin, limit[0]));
    }
