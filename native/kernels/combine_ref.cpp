// Reference combine: naive loops with double accumulators; the spec the op is tested against.
#include "combine.h"

namespace moe::kernels {

template <typename scalar_t>
void combine_forward_ref(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_sorted,
                         int64_t T, int64_t k, int64_t H, scalar_t* y) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      double acc = 0.0;
      for (int64_t j = 0; j < k; ++j) {
        acc += static_cast<double>(weights[t * k + j]) * rows[assignment_to_sorted[t * k + j] * H + h];
      }
      y[t * H + h] = static_cast<scalar_t>(acc);
    }
  }
}

template <typename scalar_t>
void combine_backward_ref(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_sorted,
                          const scalar_t* grad_y, int64_t T, int64_t k, int64_t H, scalar_t* grad_rows,
                          scalar_t* grad_weights) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      const int64_t s = assignment_to_sorted[t * k + j];
      double dot = 0.0;
      for (int64_t h = 0; h < H; ++h) {
        grad_rows[s * H + h] = static_cast<scalar_t>(static_cast<double>(weights[t * k + j]) * grad_y[t * H + h]);
        dot += static_cast<double>(rows[s * H + h]) * grad_y[t * H + h];
      }
      grad_weights[t * k + j] = static_cast<scalar_t>(dot);
    }
  }
}

template void combine_forward_ref<float>(const float*, const float*, const int64_t*, int64_t, int64_t,
                                         int64_t, float*);
template void combine_forward_ref<double>(const double*, const double*, const int64_t*, int64_t, int64_t,
                                          int64_t, double*);
template void combine_backward_ref<float>(const float*, const float*, const int64_t*, const float*, int64_t,
                                          int64_t, int64_t, float*, float*);
template void combine_backward_ref<double>(const double*, const double*, const int64_t*, const double*,
                                           int64_t, int64_t, int64_t, double*, double*);

}  // namespace moe::kernels
