// Dispatch and combine as differentiable ops: tokens permuted into expert-contiguous rows (permute), and
// the expert outputs returned to their tokens weighted by the gate (combine). Each backward is the other
// direction's gather with the same indices: no scatter-add, so results are bit-for-bit repeatable.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

struct DispatchPlan {
  int64_t num_tokens = 0;            // T
  int64_t top_k = 0;                 // k
  at::Tensor offsets;                // [E+1] int64 (CPU): expert e owns rows [offsets[e], offsets[e+1])
  at::Tensor sorted_to_assignment;   // [T*k] int64: assignment (t*k+j) at each sorted row
  at::Tensor assignment_to_sorted;   // [T*k] int64: the inverse
  at::Tensor sorted_token;           // [T*k] int64: the token t of each sorted row
};

// idx: [T,k] int64 expert choices, each in [0, num_experts).
DispatchPlan make_dispatch_plan(const at::Tensor& idx, int64_t num_experts);

// x: [T,H] float -> rows [T*k,H] in expert-contiguous order.
at::Tensor permute_tokens(const at::Tensor& x, const DispatchPlan& plan);

// rows: [T*k,H], weights: [T,k] -> y: [T,H], y[t] = sum_j weights[t,j] * rows[row of (t,j)].
at::Tensor combine_tokens(const at::Tensor& rows, const at::Tensor& weights, const DispatchPlan& plan);

}  // namespace moe::ops
