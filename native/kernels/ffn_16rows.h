// One expert's FFN forward, y = relu(x·W1ᵀ + b1)·W2ᵀ + b2, on up to 16 rows at once with the rows as the
// lanes of the SIMD vectors: each weight is broadcast once and multiplies all rows (an FMA with a
// broadcast memory operand), so no output needs the horizontal sum that kernels::row_gemm_nt pays per 16
// outputs on W as stored. The rows are transposed in (x) and out (h, y) in 16x16 register blocks, and
// layer 1's output feeds layer 2 still transposed. For the experts of a training forward, which hold
// about 16 rows each (64 inputs, top-2, 8 experts); `npm run bench:kernels` times it against row_gemm_nt.
// Only where the CPU has AVX-512F and the sizes are multiples of 16 (ffn_16rows_applies). Plain C++ on raw
// pointers (no torch).
#pragma once
#include <cstdint>

namespace moe::kernels {

bool ffn_16rows_applies(int64_t H, int64_t F, int64_t O);

// Rows [0, m) of x [m, H] (row stride ldx), 1 <= m <= 16; w1 [F, H], b1 [F], w2 [O, F], b2 [O] row-major.
// Writes h = relu(x·W1ᵀ + b1) [m, F] (row stride ldh) and y = h·W2ᵀ + b2 [m, O] (row stride ldy); reads
// and writes no row past m. Needs ffn_16rows_applies(H, F, O).
void ffn_16rows_forward(const float* x, int64_t ldx, int64_t m, const float* w1, const float* b1, const float* w2,
                        const float* b2, int64_t H, int64_t F, int64_t O, float* h, int64_t ldh, float* y,
                        int64_t ldy);

}  // namespace moe::kernels
