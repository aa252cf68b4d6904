// Register blocks of 4 rows x 64 columns (16 AVX-512 accumulators): for each k, four vectors of b's row
// and four broadcasts of a, 16 FMAs. b's 64-column strip (k x 256 bytes) is read from L1/L2 once per 4
// rows. Columns past the last full strip take 16-wide masked vectors, rows past the last block of 4 take
// blocks of 1.
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

// Rows [0, R) x columns [0, 16*V) of out, the last vector masked to `last` lanes.
template <int R, int V>
__attribute__((target("avx512f"), always_inline)) inline void block(const float* a, int64_t lda, int64_t cs,
                                                                    const float* b, int64_t k, int64_t n,
                                                                    const float* bias, __mmask16 last, float* out,
                                                                    int64_t ldo) {
  __m512 acc[R][V];
  for (int v = 0; v < V; ++v) {
    const __mmask16 mask = v == V - 1 ? last : static_cast<__mmask16>(0xffff);
    const __m512 init = bias ? _mm512_maskz_loadu_ps(mask, bias + 16 * v) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) acc[r][v] = init;
  }
  for (int64_t kk = 0; kk < k; ++kk) {
    __m512 bv[V];
    for (int v = 0; v < V; ++v) {
      const __mmask16 mask = v == V - 1 ? last : static_cast<__mmask16>(0xffff);
      bv[v] = _mm512_maskz_loadu_ps(mask, b + kk * n + 16 * v);
    }
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + kk * cs]);
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < V; ++v) {
      const __mmask16 mask = v == V - 1 ? last : static_cast<__mmask16>(0xffff);
      _mm512_mask_storeu_ps(out + r * ldo + 16 * v, mask, acc[r][v]);
    }
  }
}

// All rows over one strip of V vectors.
template <int V>
__attribute__((target("avx512f"))) void strip(const float* a, int64_t lda, int64_t cs, int64_t m, const float* b,
                                              int64_t k, int64_t n, const float* bias, __mmask16 last, float* out,
                                              int64_t ldo) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) block<4, V>(a + r * lda, lda, cs, b, k, n, bias, last, out + r * ldo, ldo);
  for (; r < m; ++r) block<1, V>(a + r * lda, lda, cs, b, k, n, bias, last, out + r * ldo, ldo);
}

}  // namespace

bool row_gemm_available() { return cpu_has_avx512f(); }

void row_gemm_strided(const float* a, int64_t lda, int64_t cs, int64_t m, const float* b, int64_t k, int64_t n,
                      const float* bias, float* out, int64_t ldo) {
  if (!row_gemm_available()) throw std::logic_error("row_gemm needs AVX-512F");
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) strip<4>(a, lda, cs, m, b + c, k, n, bias ? bias + c : nullptr, 0xffff, out + c, ldo);
  // The rest: up to 63 columns in 16-wide vectors, the last one masked.
  for (; c < n; c += 16) {
    const int64_t width = std::min<int64_t>(16, n - c);
    const auto last = static_cast<__mmask16>((1u << width) - 1u);
    strip<1>(a, lda, cs, m, b + c, k, n, bias ? bias + c : nullptr, last, out + c, ldo);
  }
}

#else

bool row_gemm_available() { return false; }

void row_gemm_strided(const float*, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, float*,
                      int64_t) {
  throw std::logic_error("row_gemm needs AVX-512F (x86-64 with GCC or Clang)");
}

#endif

}  // namespace moe::kernels
