// Reference Adam step: the formula of torch.optim.Adam written out per element, in double for the
// bias corrections as PyTorch computes them on the host.
#include <cmath>

#include "adam.h"

namespace moe::kernels {

void adam_step_ref(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n, double lr,
                   int64_t step, const AdamHyper& hyper) {
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(hyper.beta1), static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(hyper.beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    exp_avg[i] = exp_avg[i] * hyper.beta1 + g * (1.0f - hyper.beta1);
    exp_avg_sq[i] = exp_avg_sq[i] * hyper.beta2 + (1.0f - hyper.beta2) * g * g;
    const float denom = std::sqrt(exp_avg_sq[i]) / bias_correction2_sqrt + hyper.eps;
    params[i] -= step_size * (exp_avg[i] / denom);
  }
}

}  // namespace moe::kernels
