// Dispatch and combine as differentiable ops: tokens permuted into expert-contiguous rows (permute), and
// the expert outputs returned to their tokens weighted by the gate (combine). Each backward is the other
// direction's gather with the same indices: no scatter-add, so results are bit-for-bit repeatable.
//
// Two row layouts (kernels/permute.h): on CPU the packed layout (R = T*k rows, host offsets for a loop of
// per-expert products); on CUDA the capacity layout (R = E*T rows, expert e at [e*T, (e+1)*T), padding rows
// zero) whose shapes never depend on the routing, so no count is copied to the host inside a step.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

struct DispatchPlan {
  int64_t num_tokens = 0;          // T
  int64_t top_k = 0;               // k
  int64_t num_experts = 0;         // E
  int64_t capacity = 0;            // rows per expert in the capacity layout; 0 = packed layout
  at::Tensor row_to_assignment;    // [R] int64: assignment (t*k+j) at each row, -1 for padding
  at::Tensor assignment_to_row;    // [T*k] int64: the inverse
  at::Tensor counts;               // capacity layout only: [E] int64 assignments per expert, on the device
  at::Tensor offsets;              // packed only: [E+1] int64 CPU, expert e owns rows [offsets[e], offsets[e+1])
  at::Tensor sorted_token;         // packed only: [T*k] int64, the token of each row

  bool padded() const { return capacity > 0; }
  int64_t num_rows() const { return padded() ? num_experts * capacity : num_tokens * top_k; }
};

// idx: [T,k] int64 expert choices in [0, num_experts), each row's choices distinct (as the gate makes them).
// CPU: packed plan, range-checked. CUDA: capacity plan with capacity T; the range is not checked there
// (that would copy to the host mid-step), so idx must come from the gate or be checked by the caller.
DispatchPlan make_dispatch_plan(const at::Tensor& idx, int64_t num_experts);

// x: [T,H] float -> rows [R,H] in the plan's layout.
at::Tensor permute_tokens(const at::Tensor& x, const DispatchPlan& plan);

// rows: [R,H], weights: [T,k] -> y: [T,H], y[t] = sum_j weights[t,j] * rows[row of (t,j)].
at::Tensor combine_tokens(const at::Tensor& rows, const at::Tensor& weights, const DispatchPlan& plan);

}  // namespace moe::ops
