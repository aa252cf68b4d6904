// Dispatch plan and the permute/combine autograd functions. CPU: the counting sort of kernels/permute
// (which also range-checks the ids), an ATen gather for permute, and the token-parallel kernels of
// combine_cpu / permute_cpu (threaded in dispatch_cpu.h). CUDA: the plan, permute and combine kernels.
#include "dispatch.h"

#include <torch/autograd.h>

#include <algorithm>

#include "../kernels/combine.h"
#include "../kernels/permute.h"
#include "checks.h"
#include "cuda_support.h"
#include "dispatch_cpu.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct PermuteCpuFunction : public torch::autograd::Function<PermuteCpuFunction> {
  // x [T,H]; sorted_token [A]; assignment_to_row [A]
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& sorted_token,
                            const at::Tensor& assignment_to_row, int64_t k) {
    ctx->save_for_backward({assignment_to_row});
    ctx->saved_data["k"] = k;
    return x.index_select(0, sorted_token);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor a2r = ctx->get_saved_variables()[0];
    const int64_t k = ctx->saved_data["k"].toInt();
    const at::Tensor grad_rows = grads[0].contiguous();
    const int64_t H = grad_rows.size(1), T = a2r.size(0) / k;
    // grad_x[t] = sum_j grad_rows[a2r[t*k+j]]: a gather with a fixed-order sum over j.
    at::Tensor grad_x = at::empty({T, H}, grad_rows.options());
    AT_DISPATCH_FLOATING_TYPES(grad_rows.scalar_type(), "permute_backward_cpu", [&] {
      permute_backward_threaded<scalar_t>(grad_rows.data_ptr<scalar_t>(), a2r.data_ptr<int64_t>(), T, k, H,
                                          grad_x.data_ptr<scalar_t>());
    });
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct CombineCpuFunction : public torch::autograd::Function<CombineCpuFunction> {
  // rows [A,H]; weights [T,k]; assignment_to_row [A]
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& rows_in, const at::Tensor& weights_in,
                            const at::Tensor& assignment_to_row) {
    const at::Tensor rows = rows_in.contiguous(), weights = weights_in.contiguous();
    const int64_t T = weights.size(0), k = weights.size(1), H = rows.size(1);
    at::Tensor y = at::empty({T, H}, rows.options());
    AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "combine_forward_cpu", [&] {
      combine_forward_threaded<scalar_t>(rows.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                         assignment_to_row.data_ptr<int64_t>(), T, k, H, y.data_ptr<scalar_t>());
    });
    ctx->save_for_backward({rows, weights, assignment_to_row});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &rows = saved[0], &weights = saved[1], &a2r = saved[2];
    const at::Tensor grad_y = grads[0].contiguous();  // [T,H]
    const int64_t T = weights.size(0), k = weights.size(1), H = rows.size(1);
    // Every row is some assignment's (packed layout), so each grad row is written exactly once.
    at::Tensor grad_rows = at::empty_like(rows);
    at::Tensor grad_weights = at::empty_like(weights);
    AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "combine_backward_cpu", [&] {
      combine_backward_threaded<scalar_t>(rows.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                          a2r.data_ptr<int64_t>(), grad_y.data_ptr<scalar_t>(), T, k, H,
                                          grad_rows.data_ptr<scalar_t>(), grad_weights.data_ptr<scalar_t>());
    });
    return {grad_rows, grad_weights, at::Tensor()};
  }
};

struct PermuteCudaFunction : public torch::autograd::Function<PermuteCudaFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& row_to_assignment,
                            const at::Tensor& assignment_to_row, int64_t k) {
    const at::Tensor x = x_in.contiguous();
    const int64_t R = row_to_assignment.size(0), H = x.size(1);
    at::Tensor rows = at::empty({R, H}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "permute_forward_cuda", [&] {
      kernels::permute_forward_cuda<scalar_t>(x.data_ptr<scalar_t>(), row_to_assignment.data_ptr<int64_t>(), R, k,
                                              H, rows.data_ptr<scalar_t>(), current_cuda_stream());
    });
    ctx->save_for_backward({assignment_to_row});
    ctx->saved_data["k"] = k;
    ctx->saved_data["T"] = x.size(0);
    return rows;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor a2r = ctx->get_saved_variables()[0];
    const int64_t k = ctx->saved_data["k"].toInt(), T = ctx->saved_data["T"].toInt();
    const at::Tensor grad_rows = grads[0].contiguous();
    const int64_t H = grad_rows.size(1);
    at::Tensor grad_x = at::empty({T, H}, grad_rows.options());
    AT_DISPATCH_FLOATING_TYPES(grad_rows.scalar_type(), "permute_backward_cuda", [&] {
      kernels::permute_backward_cuda<scalar_t>(grad_rows.data_ptr<scalar_t>(), a2r.data_ptr<int64_t>(), T, k, H,
                                               grad_x.data_ptr<scalar_t>(), current_cuda_stream());
    });
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

struct CombineCudaFunction : public torch::autograd::Function<CombineCudaFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& rows_in, const at::Tensor& weights_in,
                            const at::Tensor& assignment_to_row, const at::Tensor& row_to_assignment) {
    const at::Tensor rows = rows_in.contiguous(), weights = weights_in.contiguous();
    const int64_t T = weights.size(0), k = weights.size(1), H = rows.size(1);
    at::Tensor y = at::empty({T, H}, rows.options());
    AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "combine_forward_cuda", [&] {
      kernels::combine_forward_cuda<scalar_t>(rows.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                              assignment_to_row.data_ptr<int64_t>(), T, k, H,
                                              y.data_ptr<scalar_t>(), current_cuda_stream());
    });
    ctx->save_for_backward({rows, weights, assignment_to_row, row_to_assignment});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &rows = saved[0], &weights = saved[1], &a2r = saved[2], &r2a = saved[3];
    const at::Tensor grad_y = grads[0].contiguous();
    const int64_t T = weights.size(0), k = weights.size(1), H = rows.size(1), R = rows.size(0);
    at::Tensor grad_rows = at::empty_like(rows);
    at::Tensor grad_weights = at::empty_like(weights);
    AT_DISPATCH_FLOATING_TYPES(rows.scalar_type(), "combine_backward_cuda", [&] {
      kernels::combine_backward_cuda<scalar_t>(rows.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                               a2r.data_ptr<int64_t>(), r2a.data_ptr<int64_t>(),
                                               grad_y.data_ptr<scalar_t>(), T, k, H, R,
                                               grad_rows.data_ptr<scalar_t>(), grad_weights.data_ptr<scalar_t>(),
                                               current_cuda_stream());
    });
    return {grad_rows, grad_weights, at::Tensor(), at::Tensor()};
  }
};

DispatchPlan packed_plan_cpu(const at::Tensor& idx, int64_t num_experts) {
  const int64_t T = idx.size(0), k = idx.size(1), A = T * k;
  DispatchPlan plan;
  plan.num_tokens = T;
  plan.top_k = k;
  plan.num_experts = num_experts;
  const auto opts = idx.options();
  plan.offsets = at::empty({num_experts + 1}, opts);
  plan.row_to_assignment = at::empty({A}, opts);
  plan.assignment_to_row = at::empty({A}, opts);
  const int64_t* ids = idx.data_ptr<int64_t>();
  const int64_t bad = kernels::dispatch_plan_cpu(ids, A, num_experts, plan.offsets.data_ptr<int64_t>(),
                                                 plan.row_to_assignment.data_ptr<int64_t>(),
                                                 plan.assignment_to_row.data_ptr<int64_t>());
  MOE_CHECK_INDEX(bad < 0, "idx values must be in [0, ", num_experts, "), got ",
                  bad < 0 ? 0 : ids[bad], " at position ", bad);
  plan.sorted_token = at::div(plan.row_to_assignment, k, "floor");
  return plan;
}

DispatchPlan padded_plan_cuda(const at::Tensor& idx, int64_t num_experts) {
  const int64_t T = idx.size(0), k = idx.size(1), A = T * k;
  DispatchPlan plan;
  plan.num_tokens = T;
  plan.top_k = k;
  plan.num_experts = num_experts;
  plan.capacity = std::max<int64_t>(T, 1);  // distinct choices per token: no expert gets more than T
  const auto opts = idx.options();
  plan.row_to_assignment = at::empty({num_experts * plan.capacity}, opts);
  plan.assignment_to_row = at::empty({A}, opts);
  plan.counts = at::empty({num_experts}, opts);
  at::Tensor workspace = at::empty({kernels::dispatch_plan_padded_cuda_workspace(A, num_experts)}, opts);
  kernels::dispatch_plan_padded_cuda(idx.data_ptr<int64_t>(), A, num_experts, plan.capacity,
                                     plan.counts.data_ptr<int64_t>(), plan.assignment_to_row.data_ptr<int64_t>(),
                                     plan.row_to_assignment.data_ptr<int64_t>(), workspace.data_ptr<int64_t>(),
                                     current_cuda_stream());
  return plan;
}

}  // namespace

DispatchPlan make_dispatch_plan(const at::Tensor& idx_in, int64_t num_experts) {
  MOE_CHECK_TYPE(idx_in.scalar_type() == at::kLong, "idx must be int64, got ", idx_in.scalar_type());
  check_dim(idx_in, 2, "idx");
  check_device_supported(idx_in, "idx");
  MOE_CHECK_VALUE(num_experts >= 1, "num_experts must be >= 1, got ", num_experts);
  MOE_CHECK_VALUE(idx_in.size(1) <= num_experts, "idx must have at most num_experts=", num_experts,
                  " (distinct) choices per token, got ", idx_in.size(1));
  const at::Tensor idx = idx_in.contiguous();
  return idx.is_cuda() ? padded_plan_cuda(idx, num_experts) : packed_plan_cpu(idx, num_experts);
}

at::Tensor permute_tokens(const at::Tensor& x, const DispatchPlan& plan) {
  check_float(x, "x");
  check_dim(x, 2, "x");
  MOE_CHECK_VALUE(x.size(0) == plan.num_tokens, "x must have ", plan.num_tokens, " rows (the plan's tokens), got ",
                  x.size(0));
  MOE_CHECK_VALUE(x.device() == plan.assignment_to_row.device(), "x must be on the plan's device ",
                  plan.assignment_to_row.device(), ", got ", x.device());
  if (plan.padded()) {
    return PermuteCudaFunction::apply(x, plan.row_to_assignment, plan.assignment_to_row, plan.top_k);
  }
  return PermuteCpuFunction::apply(x, plan.sorted_token, plan.assignment_to_row, plan.top_k);
}

at::Tensor combine_tokens(const at::Tensor& rows, const at::Tensor& weights, const DispatchPlan& plan) {
  check_float(rows, "rows");
  check_float(weights, "weights");
  check_dim(rows, 2, "rows");
  check_dim(weights, 2, "weights");
  MOE_CHECK_VALUE(rows.size(0) == plan.num_rows(), "rows must have ", plan.num_rows(),
                  " rows (the plan's layout), got ", rows.size(0));
  MOE_CHECK_VALUE(weights.size(0) == plan.num_tokens && weights.size(1) == plan.top_k, "weights must have shape [",
                  plan.num_tokens, ", ", plan.top_k, "], got ", weights.sizes());
  MOE_CHECK_TYPE(rows.scalar_type() == weights.scalar_type(), "rows and weights must share a dtype, got ",
                 rows.scalar_type(), " and ", weights.scalar_type());
  MOE_CHECK_VALUE(rows.device() == plan.assignment_to_row.device() && weights.device() == rows.device(),
                  "rows and weights must be on the plan's device ", plan.assignment_to_row.device());
  if (plan.padded()) {
    return CombineCudaFunction::apply(rows, weights, plan.assignment_to_row, plan.row_to_assignment);
  }
  return CombineCpuFunction::apply(rows, weights, plan.assignment_to_row);
}

}  // namespace moe::ops
