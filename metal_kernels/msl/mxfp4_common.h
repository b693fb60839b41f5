// Shared helpers of the MXFP4 mixture-of-experts kernels (passed to mx.fast.metal_kernel as `header`).
// Weights are the checkpoint's bytes viewed as uint32: word w of a row holds values 8w..8w+7, value
// 8w+i in bits 4i..4i+3 (low nibble first). One E8M0 scale byte covers each 32 values (4 words).

// E2M1: sign bit 3, exponent bits 2..1, mantissa bit 0.
constant float FP4_E2M1[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                               -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// 2^(s - 127) exactly; s = 0 is the subnormal 2^-127 (as torch.ldexp gives in the reference).
inline float e8m0_to_float(uint8_t s) {
    return as_type<float>(s == 0 ? 0x00400000u : uint(s) << 23);
}

// Dot product of one 32-value MXFP4 block (4 words, unscaled) with 32 activations.
template <typename T>
inline float mxfp4_block_dot(const device uint32_t* words, const device T* x) {
    float acc = 0.0f;
    for (int q = 0; q < 4; ++q) {
        uint32_t w = words[q];
        for (int i = 0; i < 8; ++i) {
            acc += FP4_E2M1[(w >> (4 * i)) & 0xFu] * float(x[8 * q + i]);
        }
    }
    return acc;
}

// The same dot product with the block's 16 weight bytes and 32 activations already in registers.
inline float mxfp4_block_dot4(uint4 w, thread const float4* x) {
    float acc = 0.0f;
    for (int q = 0; q < 4; ++q) {
        const uint32_t word = w[q];
        for (int i = 0; i < 8; ++i) {
            acc += FP4_E2M1[(word >> (4 * i)) & 0xFu] * x[2 * q + i / 4][i % 4];
        }
    }
    return acc;
}

// gpt-oss's SwiGLU: the gate is clamped from above only, the linear half to [-limit, limit], +1.
// Comparisons, not metal::min/clamp: those follow fmin and turn a NaN into the limit, hiding it.
inline float gpt_oss_swiglu(float gate, float linear, float limit) {
    gate = gate > limit ? limit : gate;
    linear = linear > limit ? limit : (linear < -limit ? -limit : linear);
    float glu = gate / (1.0f + metal::exp(-1.702f * gate));
    return glu * (linear + 1.0f);
}
