// CPU Adam: one pass over the four buffers with the per-step scalars hoisted, and restrict pointers so
// the loop becomes SIMD code. Same arithmetic order as adam_step_ref, so results agree to rounding.
#include <cmath>

#include "adam.h"
#include "simd_clones.h"

namespace moe::kernels {

MOE_SIMD_CLONES
void adam_step_cpu(float* __restrict params, const float* __restrict grads, float* __restrict exp_avg,
                   float* __restrict exp_avg_sq, int64_t n, double lr, int64_t step, const AdamHyper& hyper) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(hyper.beta1), static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(hyper.beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float inv_bias_correction2_sqrt = static_cast<float>(1.0 / std::sqrt(bias_correction2));
  const float b1 = hyper.beta1, b2 = hyper.beta2, one_minus_b1 = 1.0f - b1, one_minus_b2 = 1.0f - b2;
  const float eps = hyper.eps;
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    const float m = exp_avg[i] * b1 + g * one_minus_b1;
    const float v = exp_avg_sq[i] * b2 + one_minus_b2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    params[i] -= step_size * (m / (std::sqrt(v) * inv_bias_correction2_sqrt + eps));
  }
}

}  // namespace moe::kernels
