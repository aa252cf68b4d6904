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

void dispatch_plan_padded_ref(const int64_t* expert_ids, int64_t A, int64_t E, int64_t capacity, int64_t* counts,
                              int64_t* assignment_to_row, int64_t* row_to_assignment) {
  for (int64_t r = 0; r < E * capacity; ++r) row_to_assignment[r] = -1;
  for (int64_t e = 0; e < E; ++e) counts[e] = 0;
  for (int64_t a = 0; a < A; ++a) {  // increasing a: each expert's rows keep assignment order
    const int64_t e = expert_ids[a];
    const int64_t row = e * capacity + counts[e]++;
    assignment_to_row[a] = row;
    row_to_assignment[row] = a;
  }
}

template <typename scalar_t>
void permute_forward_ref(const scalar_t* x, const int64_t* row_to_assignment, int64_t R, int64_t k, int64_t H,
                         scalar_t* rows) {
  for (int64_t r = 0; r < R; ++r) {
    const int64_t a = row_to_assignment[r];
    for (int64_t h = 0; h < H; ++h) rows[r * H + h] = a < 0 ? scalar_t(0) : x[(a / k) * H + h];
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
