// CPU dispatch plan: one histogram pass, an exclusive scan, one stable scatter. O(A + E), no sort.
#include "permute.h"

namespace moe::kernels {

void dispatch_plan_cpu(const int64_t* expert_ids, int64_t A, int64_t E, int64_t* offsets,
                       int64_t* sorted_to_assignment, int64_t* assignment_to_sorted) {
  for (int64_t e = 0; e <= E; ++e) offsets[e] = 0;
  for (int64_t a = 0; a < A; ++a) offsets[expert_ids[a] + 1] += 1;
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
}

}  // namespace moe::kernels
