// Register blocks of 4 rows of a x 4 rows of b (16 AVX-512 accumulators): per 16 values of k, eight
// loads and 16 FMAs; at the end a shuffle tree turns the 16 accumulators into one vector of their sums
// (45 instructions per 16 outputs, instead of 16 separate horizontal sums). b's 4 rows stay in L1 while
// they meet every row of a chunk of at most 16 rows of a, so b (the weights) streams through once per
// chunk. Edges: blocks of fewer rows, each accumulator summed on its own; k's last partial vector masked.
#include "row_gemm_nt.h"

#include "row_gemm.h"
#include "simd_clones.h"

#if defined(MOE_AVX512_KERNELS)
#include <immintrin.h>
#endif

#include <algorithm>
#include <stdexcept>

namespace moe::kernels {

#if defined(MOE_AVX512_KERNELS)
namespace {

// The 16 accumulators' sums, lane i = sum of acc[i]: pairs, then quads within 128-bit lanes, then lanes.
__attribute__((target("avx512f"), always_inline)) inline __m512 sums_of_16(const __m512* acc) {
  __m512 s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) {  // per 128-bit lane: (a0+a2, b0+b2, a1+a3, b1+b3)
    s8[i] = _mm512_add_ps(_mm512_unpacklo_ps(acc[2 * i], acc[2 * i + 1]),
                          _mm512_unpackhi_ps(acc[2 * i], acc[2 * i + 1]));
  }
  for (int i = 0; i < 4; ++i) {  // per 128-bit lane: one partial sum of each of 4 accumulators
    s4[i] = _mm512_add_ps(_mm512_shuffle_ps(s8[2 * i], s8[2 * i + 1], 0x44),
                          _mm512_shuffle_ps(s8[2 * i], s8[2 * i + 1], 0xEE));
  }
  for (int i = 0; i < 2; ++i) {  // lanes (0+1, 2+3) of two vectors
    s2[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s4[2 * i], s4[2 * i + 1], 0x88),
                          _mm512_shuffle_f32x4(s4[2 * i], s4[2 * i + 1], 0xDD));
  }
  return _mm512_add_ps(_mm512_shuffle_f32x4(s2[0], s2[1], 0x88), _mm512_shuffle_f32x4(s2[0], s2[1], 0xDD));
}

// out[r, c] for r < R, c < C: rows r of a against rows c of b.
template <int R, int C>
__attribute__((target("avx512f"), always_inline)) inline void block(const float* a, int64_t lda, const float* b,
                                                                    int64_t ldb, int64_t k, const float* bias,
                                                                    float* out, int64_t ldo) {
  __m512 acc[R * C];
  for (int i = 0; i < R * C; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t kk = 0; kk < k; kk += 16) {
    const __mmask16 mask = k - kk >= 16 ? static_cast<__mmask16>(0xffff)
                                        : static_cast<__mmask16>((1u << (k - kk)) - 1u);
    __m512 bv[C];
    for (int c = 0; c < C; ++c) bv[c] = _mm512_maskz_loadu_ps(mask, b + c * ldb + kk);
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_maskz_loadu_ps(mask, a + r * lda + kk);
      for (int c = 0; c < C; ++c) acc[r * C + c] = _mm512_fmadd_ps(av, bv[c], acc[r * C + c]);
    }
  }
  if constexpr (R == 4 && C == 4) {
    // Lanes 4r..4r+3 hold row r's four outputs: the bias's four values in every 128-bit lane, then one
    // 4-wide store per row.
    __m512 sums = sums_of_16(acc);
    if (bias) sums = _mm512_add_ps(sums, _mm512_broadcast_f32x4(_mm_loadu_ps(bias)));
    _mm_storeu_ps(out, _mm512_extractf32x4_ps(sums, 0));
    _mm_storeu_ps(out + ldo, _mm512_extractf32x4_ps(sums, 1));
    _mm_storeu_ps(out + 2 * ldo, _mm512_extractf32x4_ps(sums, 2));
    _mm_storeu_ps(out + 3 * ldo, _mm512_extractf32x4_ps(sums, 3));
  } else {
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) out[r * ldo + c] = _mm512_reduce_add_ps(acc[r * C + c]) + (bias ? bias[c] : 0.0f);
    }
  }
}

// Rows [0, m) of a (m <= 16) against rows [0, C) of b.
template <int C>
__attribute__((target("avx512f"), always_inline)) inline void chunk(const float* a, int64_t lda, int64_t m,
                                                                    const float* b, int64_t ldb, int64_t k,
                                                                    const float* bias, float* out, int64_t ldo) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) block<4, C>(a + r * lda, lda, b, ldb, k, bias, out + r * ldo, ldo);
  for (; r < m; ++r) block<1, C>(a + r * lda, lda, b, ldb, k, bias, out + r * ldo, ldo);
}

__attribute__((target("avx512f"))) void row_gemm_nt_avx512(const float* a, int64_t lda, int64_t m, const float* b,
                                                           int64_t ldb, int64_t n, int64_t k, const float* bias,
                                                           float* out, int64_t ldo) {
  constexpr int64_t kChunk = 16;  // rows of a kept in L1 while b streams past
  for (int64_t r0 = 0; r0 < m; r0 += kChunk) {
    const int64_t rows = std::min(kChunk, m - r0);
    const float* ar = a + r0 * lda;
    float* o = out + r0 * ldo;
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) chunk<4>(ar, lda, rows, b + c * ldb, ldb, k, bias ? bias + c : nullptr, o + c, ldo);
    for (; c < n; ++c) chunk<1>(ar, lda, rows, b + c * ldb, ldb, k, bias ? bias + c : nullptr, o + c, ldo);
  }
}

}  // namespace

void row_gemm_nt(const float* a, int64_t lda, int64_t m, const float* b, int64_t ldb, int64_t n, int64_t k,
                 const float* bias, float* out, int64_t ldo) {
  if (!row_gemm_available()) throw std::logic_error("row_gemm_nt needs AVX-512F");
  row_gemm_nt_avx512(a, lda, m, b, ldb, n, k, bias, out, ldo);
}

#else

void row_gemm_nt(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, const float*, float*,
                 int64_t) {
  throw std::logic_error("row_gemm_nt needs AVX-512F (x86-64 with GCC or Clang)");
}

#endif

}  // namespace moe::kernels
