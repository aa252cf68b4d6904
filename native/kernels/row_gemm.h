// A few rows times a weight matrix kept row-major, out = bias + a·b, without packing either operand: the
// shape of the experts' products, where each expert gets from a few to a few hundred rows. BLAS packs
// both operands per call (`npm run bench:kernels` compares the two at the experts' shapes). Only where
// the CPU has AVX-512F (row_gemm_available()); callers use BLAS elsewhere.
// Plain C++ on raw pointers (no torch).
#pragma once
#include <cstdint>

namespace moe::kernels {

bool row_gemm_available();

// out[r, :] = bias + sum_k a(r, k) * b[k, :] for rows r in [0, m), where a(r, k) = a[r * a_row_stride +
// k * a_col_stride]: a row-major matrix (column stride 1) or the transpose of one (row stride 1, as in the
// experts' weight gradients dYᵀ·H). b [k,n] contiguous, bias [n] (may be null: zero), out [m,n] with row
// stride ldo. Needs row_gemm_available().
void row_gemm_strided(const float* a, int64_t a_row_stride, int64_t a_col_stride, int64_t m, const float* b,
                      int64_t k, int64_t n, const float* bias, float* out, int64_t ldo);

// The same for a row-major a [m,k] with row stride lda.
inline void row_gemm(const float* a, int64_t lda, int64_t m, const float* b, int64_t k, int64_t n, const float* bias,
                     float* out, int64_t ldo) {
  row_gemm_strided(a, lda, 1, m, b, k, n, bias, out, ldo);
}

}  // namespace moe::kernels
