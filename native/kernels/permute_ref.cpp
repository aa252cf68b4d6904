// Reference dispatch plan (std::stable_sort by expert) and naive permute loops: the spec, not optimised.
#include <algorithm>
#include <numeric>
#include <vector>

#include "permute.h"

namespace moe::kernels {

void dispatch_plan_ref(const int64_t* expert_ids, int64_t A, int64_t E, int64_t* offsets,
                       int64_t* sorted_to_assignment, int64_t* assignment_to_sorted) {
  std::vector<int64_t> order(A);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return expert_ids[a] < expert_ids[b]; });
  for (int64_t s = 0; s < A; ++s) {
    sorted_to_assignment[s] = order[s];
    assignment_to_sorted[order[s]] = s;
  }
  for (int64_t e = 0; e <= E; ++e) {
    offsets[e] = std::count_if(expert_ids, expert_ids + A, [&](int64_t id) { return id < e; });
  }
}

template <typename scalar_t>
void permute_forward_ref(const scalar_t* x, const int64_t* sorted_to_assignment, int64_t T, int64_t k,
                         int64_t H, scalar_t* rows) {
  (void)T;
  for (int64_t s = 0; s < T * k; ++s) {
    const int64_t t = sorted_to_assignment[s] / k;
    for (int64_t h = 0; h < H; ++h) rows[s * H + h] = x[t * H + h];
  }
}

template <typename scalar_t>
void permute_backward_ref(const scalar_t* grad_rows, const int64_t* assignment_to_sorted, int64_t T,
                          int64_t k, int64_t H, scalar_t* grad_x) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      double acc = 0.0;
      for (int64_t j = 0; j < k; ++j) acc += grad_rows[assignment_to_sorted[t * k + j] * H + h];
      grad_x[t * H + h] = static_cast<scalar_t>(acc);
    }
  }
}

template void permute_forward_ref<float>(const float*, const int64_t*, int64_t, int64_t, int64_t, float*);
template void permute_forward_ref<double>(const double*, const int64_t*, int64_t, int64_t, int64_t, double*);
template void permute_backward_ref<float>(const float*, const int64_t*, int64_t, int64_t, int64_t, float*);
template void permute_backward_ref<double>(const double*, const int64_t*, int64_t, int64_t, int64_t,
                                           double*);

}  // namespace moe::kernels
