// Per block of 16 outputs: 16 accumulators, one per output, each a vector over the rows; per k one load of
// the transposed input's row k and 16 FMAs that broadcast the 16 weights W[c, k] from memory. The 16 weight
// rows are read in step, a cache line each per 16 values of k. The inputs transposed, x (H x 16) and the
// hidden layer (F x 16), sit in a per-thread scratch (24 KB at H = 256, F = 128: L1).
#include "ffn_16rows.h"

#include "simd_clones.h"
#include "transpose16.h"

#include <stdexcept>
#include <vector>

namespace moe::kernels {

#if defined(MOE_AVX512_KERNELS)
namespace {

// acc[j] = sum over k < K of w[j * ldw + k] * vt[k]: output j's value for every row (lane).
__attribute__((target("avx512f"), always_inline)) inline void outputs16(const float* w, int64_t ldw, const float* vt,
                                                                        int64_t K, __m512* acc) {
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m512 v = _mm512_load_ps(vt + k * 16);
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(w[j * ldw + k]), v, acc[j]);
  }
}

__attribute__((target("avx512f"))) void ffn_16rows_avx512(const float* x, int64_t ldx, int64_t m, const float* w1,
                                                          const float* b1, const float* w2, const float* b2,
                                                          int64_t H, int64_t F, int64_t O, float* h, int64_t ldh,
                                                          float* y, int64_t ldy, float* xt, float* ht) {
  __m512 r[16];
  for (int64_t c0 = 0; c0 < H; c0 += 16) {  // xt[k] = column k of x (rows past m: zero)
    for (int i = 0; i < 16; ++i) r[i] = i < m ? _mm512_loadu_ps(x + i * ldx + c0) : _mm512_setzero_ps();
    transpose16_in_registers(r);
    for (int i = 0; i < 16; ++i) _mm512_store_ps(xt + (c0 + i) * 16, r[i]);
  }
  for (int64_t f0 = 0; f0 < F; f0 += 16) {  // layer 1, kept transposed in ht for layer 2, stored as rows in h
    outputs16(w1 + f0 * H, H, xt, H, r);
    for (int j = 0; j < 16; ++j) {
      r[j] = _mm512_max_ps(_mm512_add_ps(r[j], _mm512_set1_ps(b1[f0 + j])), _mm512_setzero_ps());
      _mm512_store_ps(ht + (f0 + j) * 16, r[j]);
    }
    transpose16_in_registers(r);
    for (int i = 0; i < m; ++i) _mm512_storeu_ps(h + i * ldh + f0, r[i]);
  }
  for (int64_t o0 = 0; o0 < O; o0 += 16) {  // layer 2
    outputs16(w2 + o0 * F, F, ht, F, r);
    transpose16_in_registers(r);
    const __m512 bias = _mm512_loadu_ps(b2 + o0);
    for (int i = 0; i < m; ++i) _mm512_storeu_ps(y + i * ldy + o0, _mm512_add_ps(r[i], bias));
  }
}

}  // namespace

bool ffn_16rows_applies(int64_t H, int64_t F, int64_t O) {
  return cpu_has_avx512f() && H > 0 && F > 0 && O > 0 && H % 16 == 0 && F % 16 == 0 && O % 16 == 0;
}

void ffn_16rows_forward(const float* x, int64_t ldx, int64_t m, const float* w1, const float* b1, const float* w2,
                        const float* b2, int64_t H, int64_t F, int64_t O, float* h, int64_t ldh, float* y,
                        int64_t ldy) {
  if (!ffn_16rows_applies(H, F, O)) throw std::logic_error("ffn_16rows needs AVX-512F and sizes in multiples of 16");
  if (m < 1 || m > 16) throw std::invalid_argument("ffn_16rows takes 1 to 16 rows");
  struct alignas(64) Vec16 {
    float v[16];
  };
  thread_local std::vector<Vec16> scratch;  // (H + F) vectors: xt then ht, 64-byte aligned for the loads
  scratch.resize(static_cast<size_t>(H + F));
  float* xt = scratch.data()->v;
  ffn_16rows_avx512(x, ldx, m, w1, b1, w2, b2, H, F, O, h, ldh, y, ldy, xt, xt + H * 16);
}

#else

bool ffn_16rows_applies(int64_t, int64_t, int64_t) { return false; }

void ffn_16rows_forward(const float*, int64_t, int64_t, const float*, const float*, const float*, const float*,
                        int64_t, int64_t, int64_t, float*, int64_t, float*, int64_t) {
  throw std::logic_error("ffn_16rows needs AVX-512F (x86-64 with GCC or Clang)");
}

#endif

}  // namespace moe::kernels
