#include "router_z_loss.h"

#include <algorithm>
#include <cmath>

namespace moe::kernels {

template <typename scalar_t>
double router_z_loss_forward_cpu(const scalar_t* logits, int64_t T, int64_t E, scalar_t* lse) {
  double sum = 0;
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* row = logits + t * E;
    const scalar_t top = *std::max_element(row, row + E);  // shifted, so that exp cannot overflow
    double exps = 0;  // exp in the input's precision (float's is several times cheaper), summed in double
    for (int64_t e = 0; e < E; ++e) exps += static_cast<double>(std::exp(row[e] - top));
    const double l = static_cast<double>(top) + std::log(exps);
    lse[t] = static_cast<scalar_t>(l);
    sum += l * l;
  }
  return sum / static_cast<double>(T);
}

template <typename scalar_t>
void router_z_loss_backward_cpu(const scalar_t* logits, const scalar_t* lse, int64_t T, int64_t E, double grad_z,
                                scalar_t* grad_logits) {
  const double scale = 2.0 * grad_z / static_cast<double>(T);
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t l = lse[t];
    const double scaled_l = scale * static_cast<double>(l);
    for (int64_t e = 0; e < E; ++e) {
      grad_logits[t * E + e] = static_cast<scalar_t>(scaled_l * static_cast<double>(std::exp(logits[t * E + e] - l)));
    }
  }
}

template double router_z_loss_forward_cpu<float>(const float*, int64_t, int64_t, float*);
template double router_z_loss_forward_cpu<double>(const double*, int64_t, int64_t, double*);
template void router_z_loss_backward_cpu<float>(const float*, const float*, int64_t, int64_t, double, float*);
template void router_z_loss_backward_cpu<double>(const double*, const double*, int64_t, int64_t, double, double*);

}  // namespace moe::kernels
