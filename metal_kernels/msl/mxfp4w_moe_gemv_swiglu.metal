// Decode, gate/up: for each (token t, slot k), one simdgroup computes output channels n0 and n0+1,
// that is rows 2n0 .. 2n0+3 (gate, linear, gate, linear) of expert idx[t, k] against x[t], adds
// the biases and applies SwiGLU. Lanes stride over the 32-value blocks of K; a lane loads a block's
// activations into registers once and reuses them for the 4 rows, whose 16 weight bytes it reads
// as one uint4, so each weight byte is read once, by one lane, in a 16-byte load.
// Inputs: x (T, D), w (E, 2I, D/8) u32, scales (E, 2I, D/32) u8, bias (E, 2I), idx (T, K) u32,
// limit (1,) f32. Output: act (T, K, I). Grid (I / 2 * 32, T * K, 1); whole simdgroups.
    const uint n0 = (thread_position_in_grid.x / 32) * 2;
    const uint tk = thread_position_in_grid.y;
    const uint lane = thread_index_in_simdgroup;
    const uint I = w_shape[1] / 2;
    const uint D = x_shape[1];
    const uint K = idx_shape[1];
    if (n0 >= I) {
        return;  // whole simdgroups return together: the grid is a multiple of 32 in x
    }
    const uint t = tk / K;
    const uint e = idx[tk];
    const uint blocks = D / 32;
    const size_t row0 = size_t(e) * 2 * I + 2 * n0;  // I is even: rows row0 .. row0 + 3 exist
    const device uint4* w4 = (const device uint4*)w + row0 * blocks;  // one uint4 per block
    const device uint8_t* s = scales + row0 * blocks;
    const device vec<T, 4>* x4 = (const device vec<T, 4>*)(x + size_t(t) * D);

    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (uint b = lane; b < blocks; b += 32) {
        float4 xv[8];
        for (uint q = 0; q < 8; ++q) {
            xv[q] = float4(x4[8 * b + q]);
        }
        for (uint r = 0; r < 4; ++r) {
            const uint4 wv = w4[r * blocks + b];
            acc[r] += mxfp4_block_dot4(wv, xv) * e8m0_to_float(s[r * blocks + b]);
        }
    }
    for (uint r = 0; r < 4; ++r) {
        acc[r] = simd_sum(acc[r]);
    }
    if (lane == 0) {
        for (uint c = 0; c < 2; ++c) {
            const float gate = acc[2 * c] + float(bias[row0 + 2 * c]);
            const float lin = acc[2 * c + 1] + float(bias[row0 + 2 * c + 1]);
            act[size_t(tk) * I + n0 + c] = T(gpt_oss_swiglu(gate, lin, limit[0]));
        }
    }
