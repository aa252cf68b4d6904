// A few rows times the transpose of a row-major weight matrix, out = bias + a·bᵀ, reading both operands
// along their rows: the experts' training forward x·Wᵀ with W as stored ([out, in]), without first
// transposing W for kernels::row_gemm. Each output is a dot product, so the kernel pays a horizontal sum
// per 16 outputs; it beats transpose-then-row_gemm while an expert has few rows (the transpose reads all
// of W for them), and loses once W's columns are reused by many rows (`npm run bench:kernels` compares
// the two). Only where the CPU has AVX-512F (row_gemm_available()). Plain C++ on raw pointers (no torch).
#pragma once
#include <cstdint>

namespace moe::kernels {

// out[r, c] = bias[c] + sum_k a[r * lda + k] * b[c * ldb + k] for r in [0, m), c in [0, n), k in [0, k):
// a [m, k] and b [n, k] row-major (row strides lda, ldb), bias [n] (may be null: zero), out [m, n] with
// row stride ldo. Needs row_gemm_available().
void row_gemm_nt(const float* a, int64_t lda, int64_t m, const float* b, int64_t ldb, int64_t n, int64_t k,
                 const float* bias, float* out, int64_t ldo);

}  // namespace moe::kernels
