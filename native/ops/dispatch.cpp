// Dispatch plan (kernels/permute counting sort) and the permute/combine autograd functions, expressed
// with ATen gathers and one batched product so that they stay vectorised on CPU.
#include "dispatch.h"

#include <torch/autograd.h>

#include "../kernels/permute.h"
#include "checks.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct PermuteFunction : public torch::autograd::Function<PermuteFunction> {
  // x [T,H]; sorted_token [A]; assignment_to_sorted [A]
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& sorted_token,
                            const at::Tensor& assignment_to_sorted, int64_t k) {
    ctx->save_for_backward({assignment_to_sorted});
    ctx->saved_data["k"] = k;
    return x.index_select(0, sorted_token);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor a2s = ctx->get_saved_variables()[0];
    const int64_t k = ctx->saved_data["k"].toInt();
    const at::Tensor& grad_rows = grads[0];
    const int64_t H = grad_rows.size(1);
    // grad_x[t] = sum_j grad_rows[a2s[t*k+j]]: gather in assignment order, then a fixed-order sum over j.
    at::Tensor grad_x = grad_rows.index_select(0, a2s).view({-1, k, H}).sum(1);
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct CombineFunction : public torch::autograd::Function<CombineFunction> {
  // rows [A,H]; weights [T,k]; assignment_to_sorted / sorted_to_assignment [A]
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& rows, const at::Tensor& weights,
                            const at::Tensor& assignment_to_sorted, const at::Tensor& sorted_to_assignment) {
    const int64_t T = weights.size(0), k = weights.size(1), H = rows.size(1);
    at::Tensor gathered = rows.index_select(0, assignment_to_sorted).view({T, k, H});
    ctx->save_for_backward({gathered, weights, sorted_to_assignment});
    return at::bmm(weights.unsqueeze(1), gathered).squeeze(1);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& gathered = saved[0];  // [T,k,H]
    const at::Tensor& weights = saved[1];   // [T,k]
    const at::Tensor& s2a = saved[2];
    const at::Tensor grad_y = grads[0].contiguous();  // [T,H]
    const int64_t T = weights.size(0), k = weights.size(1), H = gathered.size(2);
    at::Tensor grad_weights = at::bmm(gathered, grad_y.unsqueeze(2)).squeeze(2);
    // grad of each routed copy is w[t,j]*grad_y[t]; put it back at its sorted row with the inverse gather.
    at::Tensor grad_gathered = (weights.unsqueeze(2) * grad_y.unsqueeze(1)).view({T * k, H});
    at::Tensor grad_rows = grad_gathered.index_select(0, s2a);
    return {grad_rows, grad_weights, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

DispatchPlan make_dispatch_plan(const at::Tensor& idx_in, int64_t num_experts) {
  MOE_CHECK_TYPE(idx_in.scalar_type() == at::kLong, "idx must be int64, got ", idx_in.scalar_type());
  check_dim(idx_in, 2, "idx");
  check_cpu(idx_in, "idx");
  MOE_CHECK_VALUE(num_experts >= 1, "num_experts must be >= 1, got ", num_experts);
  const at::Tensor idx = idx_in.contiguous();
  const int64_t T = idx.size(0), k = idx.size(1), A = T * k;
  if (A > 0) {
    const int64_t lo = idx.min().item<int64_t>(), hi = idx.max().item<int64_t>();
    MOE_CHECK_INDEX(lo >= 0 && hi < num_experts, "idx values must be in [0, ", num_experts,
                    "), got range [", lo, ", ", hi, "]");
  }
  DispatchPlan plan;
  plan.num_tokens = T;
  plan.top_k = k;
  const auto opts = idx.options();
  plan.offsets = at::empty({num_experts + 1}, opts);
  plan.sorted_to_assignment = at::empty({A}, opts);
  plan.assignment_to_sorted = at::empty({A}, opts);
  kernels::dispatch_plan_cpu(idx.data_ptr<int64_t>(), A, num_experts, plan.offsets.data_ptr<int64_t>(),
                             plan.sorted_to_assignment.data_ptr<int64_t>(),
                             plan.assignment_to_sorted.data_ptr<int64_t>());
  plan.sorted_token = at::div(plan.sorted_to_assignment, k, "floor");
  return plan;
}

at::Tensor permute_tokens(const at::Tensor& x, const DispatchPlan& plan) {
  check_float(x, "x");
  check_dim(x, 2, "x");
  MOE_CHECK_VALUE(x.size(0) == plan.num_tokens, "x must have ", plan.num_tokens,
                  " rows (the plan's tokens), got ", x.size(0));
  return PermuteFunction::apply(x, plan.sorted_token, plan.assignment_to_sorted, plan.top_k);
}

at::Tensor combine_tokens(const at::Tensor& rows, const at::Tensor& weights, const DispatchPlan& plan) {
  check_float(rows, "rows");
  check_float(weights, "weights");
  check_dim(rows, 2, "rows");
  check_dim(weights, 2, "weights");
  MOE_CHECK_VALUE(rows.size(0) == plan.num_tokens * plan.top_k, "rows must have T*k=",
                  plan.num_tokens * plan.top_k, " rows, got ", rows.size(0));
  MOE_CHECK_VALUE(weights.size(0) == plan.num_tokens && weights.size(1) == plan.top_k,
                  "weights must have shape [", plan.num_tokens, ", ", plan.top_k, "], got ", weights.sizes());
  MOE_CHECK_TYPE(rows.scalar_type() == weights.scalar_type(), "rows and weights must share a dtype, got ",
                 rows.scalar_type(), " and ", weights.scalar_type());
  return CombineFunction::apply(rows, weights.contiguous(), plan.assignment_to_sorted,
                                plan.sorted_to_assignment);
}

}  // namespace moe::ops
