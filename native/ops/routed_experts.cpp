#include "routed_experts.h"

#include <torch/autograd.h>

#include <cstring>

#include "../kernels/permute.h"
#include "checks.h"
#include "dispatch_cpu.h"
#include "expert_ffn.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct RoutedExpertsFunction : public torch::autograd::Function<RoutedExpertsFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weights,
                            const at::Tensor& idx, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                            const at::Tensor& b2) {
    const int64_t T = x.size(0), H = x.size(1), k = idx.size(1), A = T * k, E = w1.size(0);
    at::Tensor offsets = at::empty({E + 1}, idx.options());
    at::Tensor row_to_assignment = at::empty({A}, idx.options()), assignment_to_row = at::empty({A}, idx.options());
    const int64_t* ids = idx.data_ptr<int64_t>();
    const int64_t bad = kernels::dispatch_plan_cpu(ids, A, E, offsets.data_ptr<int64_t>(),
                                                   row_to_assignment.data_ptr<int64_t>(),
                                                   assignment_to_row.data_ptr<int64_t>());
    MOE_CHECK_INDEX(bad < 0, "idx values must be in [0, ", E, "), got ", bad < 0 ? 0 : ids[bad], " at position ",
                    bad);
    // Permute: row r is a copy of its assignment's token.
    at::Tensor rows = at::empty({A, H}, x.options());
    const float* xs = x.data_ptr<float>();
    const int64_t* r2a = row_to_assignment.data_ptr<int64_t>();
    float* rs = rows.data_ptr<float>();
    for_token_ranges(A, H, [&](int64_t r0, int64_t n) {
      for (int64_t r = r0; r < r0 + n; ++r) std::memcpy(rs + r * H, xs + r2a[r] / k * H, sizeof(float) * H);
    });
    at::Tensor hidden = at::empty({A, w1.size(1)}, x.options()), out = at::empty({A, H}, x.options());
    expert_ffn_forward_cpu(rows, offsets.data_ptr<int64_t>(), w1, b1, w2, b2, hidden, out);
    at::Tensor y = at::empty({T, H}, x.options());
    combine_forward_threaded<float>(out.data_ptr<float>(), weights.data_ptr<float>(),
                                    assignment_to_row.data_ptr<int64_t>(), T, k, H, y.data_ptr<float>());
    ctx->save_for_backward({rows, hidden, out, weights, assignment_to_row, offsets, w1, w2});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &rows = saved[0], &hidden = saved[1], &out = saved[2], &weights = saved[3];
    const at::Tensor &assignment_to_row = saved[4], &offsets = saved[5], &w1 = saved[6], &w2 = saved[7];
    const at::Tensor grad_y = grads[0].contiguous();
    const int64_t T = weights.size(0), k = weights.size(1), H = rows.size(1);
    const int64_t* a2r = assignment_to_row.data_ptr<int64_t>();
    // Combine's backward writes both gradients; constant weights, as forced routing gives, drop theirs.
    at::Tensor grad_out = at::empty_like(out), grad_weights = at::empty_like(weights);
    combine_backward_threaded<float>(out.data_ptr<float>(), weights.data_ptr<float>(), a2r, grad_y.data_ptr<float>(),
                                     T, k, H, grad_out.data_ptr<float>(), grad_weights.data_ptr<float>());
    const ExpertFfnGrads g = expert_ffn_backward_cpu(grad_out, rows, hidden, offsets.data_ptr<int64_t>(), w1, w2);
    at::Tensor grad_x;
    if (ctx->needs_input_grad(0)) {
      grad_x = at::empty({T, H}, rows.options());
      permute_backward_threaded<float>(g.rows.data_ptr<float>(), a2r, T, k, H, grad_x.data_ptr<float>());
    }
    return {grad_x, ctx->needs_input_grad(1) ? grad_weights : at::Tensor(), at::Tensor(), g.w1, g.b1, g.w2, g.b2};
  }
};

}  // namespace

bool routed_experts_applies(const at::Tensor& x, const at::Tensor& weights, const at::Tensor& w1) {
  for (const at::Tensor* t : {&x, &weights, &w1}) {
    if (t->scalar_type() != at::kFloat || !t->device().is_cpu()) return false;
  }
  return x.dim() == 2 && x.size(0) >= 1;
}

at::Tensor routed_experts(const at::Tensor& x, const at::Tensor& idx, const at::Tensor& weights, const at::Tensor& w1,
                          const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2) {
  check_expert_inputs(x, w1, b1, w2, b2, "x");
  const int64_t T = x.size(0), H = x.size(1), E = w1.size(0);
  MOE_CHECK_VALUE(w2.size(1) == H, "w2 must map back to x's ", H, " columns (shape [", E, ", ", H, ", ",
                  w1.size(1), "]), got ", w2.sizes());
  MOE_CHECK_TYPE(idx.scalar_type() == at::kLong, "idx must be int64, got ", idx.scalar_type());
  MOE_CHECK_VALUE(idx.dim() == 2 && idx.size(0) == T && idx.size(1) >= 1 && idx.size(1) <= E,
                  "idx must have shape [", T, ", k] with 1 <= k <= ", E, ", got ", idx.sizes());
  MOE_CHECK_VALUE(weights.sizes() == idx.sizes(), "weights must have idx's shape ", idx.sizes(), ", got ",
                  weights.sizes());
  MOE_CHECK_VALUE(routed_experts_applies(x, weights, w1), "routed_experts needs float32 CPU tensors and at least one "
                  "input; use make_dispatch_plan, permute_tokens, expert_ffn and combine_tokens elsewhere");
  return RoutedExpertsFunction::apply(x.contiguous(), weights.contiguous(), idx.contiguous(), w1.contiguous(),
                                      b1.contiguous(), w2.contiguous(), b2.contiguous());
}

}  // namespace moe::ops
