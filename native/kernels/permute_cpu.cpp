// CPU dispatch plan (one histogram pass, an exclusive scan, one stable scatter: O(A + E), no sort) and the
// permute backward gather-sum.
#include "permute.h"

namespace moe::kernels {

int64_t dispatch_plan_cpu(const int64_t* expert_ids, int64_t A, int64_t E, int64_t* offsets,
                          int64_t* sorted_to_assignment, int64_t* assignment_to_sorted) {
  for (int64_t e = 0; e <= E; ++e) offsets[e] = 0;
  for (int64_t a = 0; a < A; ++a) {
    const int64_t e = expert_ids[a];
    if (e < 0 || e >= E) return a;
    offsets[e + 1] += 1;
  }
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  // Scatter in increasing a with offsets[e] as expert e's next free row, so the order inside an expert
  // is stable; afterwards offsets[e] holds the end of expert e, and one shift restores the starts.
  for (int64_t a = 0; a < A; ++a) {
    const int64_t s = offsets[expert_ids[a]]++;
    sorted_to_assignment[s] = a;
    assignment_to_sorted[a] = s;
  }
  for (int64_t e = E; e > 0; --e) offsets[e] = offsets[e - 1];
  offsets[0] = 0;
  return -1;
}

}  // namespace moe::kernels

namespace moe::kernels {

template <typename scalar_t>
void permute_backward_cpu(const scalar_t* grad_rows, const int64_t* assignment_to_row, int64_t T, int64_t k,
                          int64_t H, scalar_t* grad_x) {
  for (int64_t t = 0; t < T; ++t) {
    scalar_t* __restrict out = grad_x + t * H;
    const scalar_t* __restrict first = grad_rows + assignment_to_row[t * k] * H;
    for (int64_t h = 0; h < H; ++h) out[h] = first[h];
    for (int64_t j = 1; j < k; ++j) {
      const scalar_t* __restrict row = grad_rows + assignment_to_row[t * k + j] * H;
      for (int64_t h = 0; h < H; ++h) out[h] += row[h];
    }
  }
}

template void permute_backward_cpu<float>(const float*, const int64_t*, int64_t, int64_t, int64_t, float*);
template void permute_backward_cpu<double>(const double*, const int64_t*, int64_t, int64_t, int64_t, double*);

}  // namespace moe::kernels
