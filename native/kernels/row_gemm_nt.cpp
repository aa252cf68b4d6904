// Register blocks of 4 rows of a x 4 rows of b (16 AVX-512 accumulators): per 16 values of k, eight
// loads and 16 FMAs; at the end a shuffle tree turns the 16 accumulators into one vector of their sums
// (45 instructions per 16 outputs, instead of 16 separate horizontal sums). b's 4 rows stay in L1 while
// they meet every row of a chunk of at most 16 rows of a, so b (the weights) streams through once per
// chunk. Edges: the last 1-3 rows of a chunk take 16, 8 or 5 rows of b per block (again 16
// accumulators and one tree; a single row, as in a one-input forward, then stores 16 outputs at once);
// the last rows of b one at a time; k's last partial vector masked.
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

// out[r, c] for r < R, c < C: rows r of a against rows c of b, with R * C <= 16 accumulators.
template <int R, int C>
__attribute__((target("avx512f"), always_inline)) inline void block(const float* a, int64_t lda, const float* b,
                                                                    int64_t ldb, int64_t k, const float* bias,
                                                                    float* out, int64_t ldo) {
  static_assert(R * C <= 16, "at most 16 accumulators");
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();  // those past R * C stay zero for the tree
  for (int64_t kk = 0; kk < k; kk += 16) {
    const __mmask16 mask = k - kk >= 16 ? static_cast<__mmask16>(0xffff)
                                        : static_cast<__mmask16>((1u << (k - kk)) - 1u);
    if constexpr (R == 1) {  // one row of a: each row of b is used once, loaded as it is needed
      const __m512 av = _mm512_maskz_loadu_ps(mask, a + kk);
      for (int c = 0; c < C; ++c) acc[c] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mask, b + c * ldb + kk), acc[c]);
    } else {
      __m512 bv[C];
      for (int c = 0; c < C; ++c) bv[c] = _mm512_maskz_loadu_ps(mask, b + c * ldb + kk);
      for (int r = 0; r < R; ++r) {
        const __m512 av = _mm512_maskz_loadu_ps(mask, a + r * lda + kk);
        for (int c = 0; c < C; ++c) acc[r * C + c] = _mm512_fmadd_ps(av, bv[c], acc[r * C + c]);
      }
    }
  }
  if constexpr (R * C == 1) {
    out[0] = _mm512_reduce_add_ps(acc[0]) + (bias ? bias[0] : 0.0f);
    return;
  }
  // Lane r * C + c holds out[r, c].
  __m512 sums = sums_of_16(acc);
  if constexpr (R == 4 && C == 4) {
    // The bias's four values in every 128-bit lane, then one 4-wide store per row.
    if (bias) sums = _mm512_add_ps(sums, _mm512_broadcast_f32x4(_mm_loadu_ps(bias)));
    _mm_storeu_ps(out, _mm512_extractf32x4_ps(sums, 0));
    _mm_storeu_ps(out + ldo, _mm512_extractf32x4_ps(sums, 1));
    _mm_storeu_ps(out + 2 * ldo, _mm512_extractf32x4_ps(sums, 2));
    _mm_storeu_ps(out + 3 * ldo, _mm512_extractf32x4_ps(sums, 3));
  } else if constexpr (R == 1 && C == 16) {
    if (bias) sums = _mm512_add_ps(sums, _mm512_loadu_ps(bias));
    _mm512_storeu_ps(out, sums);
  } else {
    alignas(64) float values[16];
    _mm512_store_ps(values, sums);
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) out[r * ldo + c] = values[r * C + c] + (bias ? bias[c] : 0.0f);
    }
  }
}

// Rows [0, R) of a against all n rows of b: blocks of C rows of b, then the last few one at a time.
template <int R, int C>
__attribute__((target("avx512f"), always_inline)) inline void rows_against_all(const float* a, int64_t lda,
                                                                               const float* b, int64_t ldb, int64_t n,
                                                                               int64_t k, const float* bias,
                                                                               float* out, int64_t ldo) {
  int64_t c = 0;
  for (; c + C <= n; c += C) block<R, C>(a, lda, b + c * ldb, ldb, k, bias ? bias + c : nullptr, out + c, ldo);
  for (; c < n; ++c) block<R, 1>(a, lda, b + c * ldb, ldb, k, bias ? bias + c : nullptr, out + c, ldo);
}

__attribute__((target("avx512f"))) void row_gemm_nt_avx512(const float* a, int64_t lda, int64_t m, const float* b,
                                                           int64_t ldb, int64_t n, int64_t k, const float* bias,
                                                           float* out, int64_t ldo) {
  constexpr int64_t kChunk = 16;  // rows of a that stay in L1 while b streams past (32 KB at k = 512)
  for (int64_t r0 = 0; r0 < m; r0 += kChunk) {
    const int64_t rows = std::min(kChunk, m - r0), full = rows / 4 * 4;
    const float* ar = a + r0 * lda;
    float* o = out + r0 * ldo;
    // Blocks of 4 rows of a: 4 rows of b at a time, each meeting every block of a while it is in L1.
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
      for (int64_t r = 0; r < full; r += 4) {
        block<4, 4>(ar + r * lda, lda, b + c * ldb, ldb, k, bias ? bias + c : nullptr, o + r * ldo + c, ldo);
      }
    }
    for (; c < n; ++c) {
      for (int64_t r = 0; r < full; r += 4) {
        block<4, 1>(ar + r * lda, lda, b + c * ldb, ldb, k, bias ? bias + c : nullptr, o + r * ldo + c, ldo);
      }
    }
    // The last 1 to 3 rows: still 16 accumulators (16, 8 or 5 rows of b at a time), so still one tree.
    const float* at = ar + full * lda;
    float* ot = o + full * ldo;
    switch (rows - full) {
      case 1: rows_against_all<1, 16>(at, lda, b, ldb, n, k, bias, ot, ldo); break;
      case 2: rows_against_all<2, 8>(at, lda, b, ldb, n, k, bias, ot, ldo); break;
      case 3: rows_against_all<3, 5>(at, lda, b, ldb, n, k, bias, ot, ldo); break;
      default: break;
    }
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
