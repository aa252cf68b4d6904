// CPU Adam: one pass over the four buffers with the per-step scalars hoisted. Where the CPU has AVX-512,
// a hand-written loop with fewer vector operations (adam_avx512); elsewhere the plain loop of
// adam_step_ref's formula with restrict pointers, which the compiler turns into SIMD code. Both agree with
// adam_step_ref to rounding (test/native/cpu_kernels_test.cpp).
#include <cmath>

#include "adam.h"
#include "simd_clones.h"

#if defined(MOE_AVX512_KERNELS)
#include <immintrin.h>
#endif

namespace moe::kernels {
namespace {

// The step's scalars, computed once per call. The last two are the AVX-512 loop's: eps and the step size
// divided by c = 1/sqrt(1 - b2^step), which folds v's bias correction into the constants.
struct AdamScalars {
  float step_size, inv_bias_correction2_sqrt, b1, b2, one_minus_b1, one_minus_b2, eps;
  float eps_over_c, step_size_over_c;
};

AdamScalars scalars_of(double lr, int64_t step, const AdamHyper& hyper) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(hyper.beta1), static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(hyper.beta2), static_cast<double>(step));
  const auto step_size = static_cast<float>(lr / bias_correction1);
  const auto c = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  return {step_size, c, hyper.beta1, hyper.beta2, 1.0f - hyper.beta1, 1.0f - hyper.beta2, hyper.eps,
          hyper.eps / c, step_size / c};
}

MOE_SIMD_CLONES
void adam_portable_loop(float* __restrict params, const float* __restrict grads, float* __restrict exp_avg,
                        float* __restrict exp_avg_sq, int64_t n, const AdamScalars s) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    const float m = exp_avg[i] * s.b1 + g * s.one_minus_b1;
    const float v = exp_avg_sq[i] * s.b2 + s.one_minus_b2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    params[i] -= s.step_size * (m / (std::sqrt(v) * s.inv_bias_correction2_sqrt + s.eps));
  }
}

#if defined(MOE_AVX512_KERNELS)
// Vector operations bound this loop on Zen 4 (the portable loop's AVX2 clone ran at about 17 cycles per 16
// values with all four buffers in L1), so the update takes as few as it allows:
// - the moments as one multiply and one FMA each;
// - v's bias correction folded into the constants: m / (sqrt(v) c + eps) = (1/c) m / (sqrt(v) + eps/c);
// - the quotient from a reciprocal estimate (rcp14) refined by one Newton step, q = m r + (m - d m r) r,
//   within about an ulp of the division it replaces (the square root and a division share one divider).
// Where d is infinite (a gradient whose square overflowed) the Newton step meets inf * 0 = NaN; those
// lanes take the division's answer, m * 0 (0, or NaN where m is not finite).
template <bool kTail>
__attribute__((target("avx512f"), always_inline)) inline void adam_16(float* params, const float* grads,
                                                                      float* exp_avg, float* exp_avg_sq,
                                                                      __mmask16 live, const AdamScalars& s) {
  const __m512 g = kTail ? _mm512_maskz_loadu_ps(live, grads) : _mm512_loadu_ps(grads);
  const __m512 m0 = kTail ? _mm512_maskz_loadu_ps(live, exp_avg) : _mm512_loadu_ps(exp_avg);
  const __m512 v0 = kTail ? _mm512_maskz_loadu_ps(live, exp_avg_sq) : _mm512_loadu_ps(exp_avg_sq);
  const __m512 p0 = kTail ? _mm512_maskz_loadu_ps(live, params) : _mm512_loadu_ps(params);
  const __m512 g_scaled = _mm512_mul_ps(g, _mm512_set1_ps(s.one_minus_b1));
  const __m512 m = _mm512_fmadd_ps(m0, _mm512_set1_ps(s.b1), g_scaled);
  const __m512 g2_scaled = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(s.one_minus_b2), g), g);
  const __m512 v = _mm512_fmadd_ps(v0, _mm512_set1_ps(s.b2), g2_scaled);
  const __m512 eps = _mm512_set1_ps(s.eps_over_c);
  const __m512 d = _mm512_add_ps(_mm512_sqrt_ps(v), eps);
  const __m512 r = _mm512_rcp14_ps(d);
  const __m512 q0 = _mm512_mul_ps(m, r);
  __m512 q = _mm512_fmadd_ps(_mm512_fnmadd_ps(d, q0, m), r, q0);
  const __mmask16 infinite = _mm512_cmp_ps_mask(d, _mm512_set1_ps(INFINITY), _CMP_EQ_OQ);
  q = _mm512_mask_mul_ps(q, infinite, m, _mm512_setzero_ps());
  const __m512 p = _mm512_fnmadd_ps(_mm512_set1_ps(s.step_size_over_c), q, p0);
  if (kTail) {
    _mm512_mask_storeu_ps(exp_avg, live, m);
    _mm512_mask_storeu_ps(exp_avg_sq, live, v);
    _mm512_mask_storeu_ps(params, live, p);
  } else {
    _mm512_storeu_ps(exp_avg, m);
    _mm512_storeu_ps(exp_avg_sq, v);
    _mm512_storeu_ps(params, p);
  }
}

__attribute__((target("avx512f"))) void adam_avx512(float* params, const float* grads, float* exp_avg,
                                                    float* exp_avg_sq, int64_t n, const AdamScalars s) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) adam_16<false>(params + i, grads + i, exp_avg + i, exp_avg_sq + i, 0xffff, s);
  if (i < n) {
    const auto live = static_cast<__mmask16>((1u << (n - i)) - 1u);
    adam_16<true>(params + i, grads + i, exp_avg + i, exp_avg_sq + i, live, s);
  }
}
#endif

}  // namespace

void adam_step_cpu(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n, double lr,
                   int64_t step, const AdamHyper& hyper) {
  const AdamScalars s = scalars_of(lr, step, hyper);
#if defined(MOE_AVX512_KERNELS)
  if (cpu_has_avx512f()) return adam_avx512(params, grads, exp_avg, exp_avg_sq, n, s);
#endif
  adam_portable_loop(params, grads, exp_avg, exp_avg_sq, n, s);
}

void adam_step_cpu_portable(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n,
                            double lr, int64_t step, const AdamHyper& hyper) {
  adam_portable_loop(params, grads, exp_avg, exp_avg_sq, n, scalars_of(lr, step, hyper));
}

}  // namespace moe::kernels
