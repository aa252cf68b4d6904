#include "fused_router.h"

#include <torch/autograd.h>

#include "../kernels/column_sums.h"
#include "../kernels/router_z_loss.h"
#include "../kernels/row_gemm.h"
#include "../kernels/row_gemm_nt.h"
#include "../kernels/topk_gate.h"
#include "checks.h"
#include "row_kernels.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The value of a scalar gradient (a one-value float tensor on the CPU), read in place: item() is an op.
double scalar_of(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat && t.numel() == 1 ? static_cast<double>(*t.data_ptr<float>()) : t.item<double>();
}

struct FusedRouterFunction : public torch::autograd::Function<FusedRouterFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                               int64_t k) {
    const int64_t T = x.size(0), H = x.size(1), E = w.size(0);
    const at::TensorOptions f = x.options(), i64 = x.options().dtype(at::kLong);
    // What only this node reads, in one buffer: logits [T,E], probs [T,E], lse [T] (one allocation, not three).
    at::Tensor internals = at::empty({T * (2 * E + 1)}, f);
    float *logits = internals.data_ptr<float>(), *probs = logits + T * E, *lse = probs + T * E;
    at::Tensor weights = at::empty({T, k}, f), prob_sums = at::empty({E}, f);
    at::Tensor idx = at::empty({T, k}, i64), counts = at::empty({E}, i64);
    kernels::row_gemm_nt(x.data_ptr<float>(), H, T, w.data_ptr<float>(), H, E, H, b.data_ptr<float>(), logits, E);
    const double z = kernels::router_z_loss_forward_cpu<float>(logits, T, E, lse);
    kernels::topk_gate_forward_cpu<float>(logits, T, E, k, probs, idx.data_ptr<int64_t>(), weights.data_ptr<float>(),
                                          counts.data_ptr<int64_t>(), prob_sums.data_ptr<float>());
    // load_balancing_loss's formula: E/(T*T) * sum_e counts_e * prob_sums_e, in double.
    const double scale = static_cast<double>(E) / (static_cast<double>(T) * static_cast<double>(T));
    double aux = 0;
    const int64_t* c = counts.data_ptr<int64_t>();
    const float* p = prob_sums.data_ptr<float>();
    for (int64_t e = 0; e < E; ++e) aux += static_cast<double>(c[e]) * static_cast<double>(p[e]);
    ctx->save_for_backward({x, w, internals, idx, weights, counts});
    ctx->saved_data["scale"] = scale;
    // Outputs that do not reach the loss (the z-loss at weight 0, the counts) then arrive as undefined
    // gradients, not as zero tensors made for them: their backward work is skipped.
    ctx->set_materialize_grads(false);
    ctx->mark_non_differentiable({idx, counts, prob_sums});
    return {weights, at::scalar_tensor(aux * scale, f), at::scalar_tensor(z, f), idx, counts, prob_sums};
  }

  // grads: weights, aux_loss, z_loss (each undefined where it did not reach the loss), then the three
  // non-differentiable outputs.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &internals = saved[2], &idx = saved[3], &weights = saved[4];
    const at::Tensor& counts = saved[5];
    const int64_t T = x.size(0), H = x.size(1), E = w.size(0), k = idx.size(1);
    const float *logits = internals.data_ptr<float>(), *probs = logits + T * E, *lse = probs + T * E;
    const at::Tensor grad_weights = grads[0].defined() ? grads[0].contiguous() : at::zeros_like(weights);
    // grad_logits [T,E], then the gradient of prob_sums [E] and the z-loss's share [T,E]: one buffer.
    at::Tensor buffer = at::empty({T * E + E + T * E}, x.options());
    float *grad_logits = buffer.data_ptr<float>(), *gp = grad_logits + T * E, *from_z = gp + E;
    // The aux loss is linear in prob_sums with coefficients scale * counts_e (the counts come from a top-k).
    const double g_aux = grads[1].defined() ? scalar_of(grads[1]) * ctx->saved_data["scale"].toDouble() : 0.0;
    const int64_t* c = counts.data_ptr<int64_t>();
    for (int64_t e = 0; e < E; ++e) gp[e] = static_cast<float>(g_aux * static_cast<double>(c[e]));
    kernels::topk_gate_backward_cpu<float>(probs, idx.data_ptr<int64_t>(), weights.data_ptr<float>(),
                                           grad_weights.data_ptr<float>(), gp, T, E, k, grad_logits);
    if (grads[2].defined()) {
      kernels::router_z_loss_backward_cpu<float>(logits, lse, T, E, scalar_of(grads[2]), from_z);
      for (int64_t i = 0; i < T * E; ++i) grad_logits[i] += from_z[i];
    }
    // The gate's linear map, as in narrow_linear's backward.
    const float* g = grad_logits;
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {  // dX = dL·W
      dx = at::empty({T, H}, x.options());
      kernels::row_gemm(g, E, T, w.data_ptr<float>(), E, H, nullptr, dx.data_ptr<float>(), H);
    }
    if (ctx->needs_input_grad(1)) {  // dW = dLᵀ·X, dLᵀ read by strides
      dw = at::empty({E, H}, w.options());
      kernels::row_gemm_strided(g, 1, E, E, x.data_ptr<float>(), T, H, nullptr, dw.data_ptr<float>(), H);
    }
    if (ctx->needs_input_grad(2)) {
      db = at::empty({E}, w.options());
      kernels::column_sums(g, T, E, E, db.data_ptr<float>());
    }
    return {dx, dw, db, at::Tensor()};
  }
};

}  // namespace

bool fused_router_applies(const at::Tensor& x, const at::Tensor& gate_w, const at::Tensor& gate_b) {
  return x.dim() == 2 && x.size(0) >= 1 && uses_row_kernels({&x, &gate_w, &gate_b});
}

RouterOutput fused_router(const at::Tensor& x, const at::Tensor& gate_w, const at::Tensor& gate_b, int64_t k) {
  check_dim(x, 2, "x");
  check_dim(gate_w, 2, "gate_w");
  check_dim(gate_b, 1, "gate_b");
  const int64_t E = gate_w.size(0);
  MOE_CHECK_VALUE(gate_w.size(1) == x.size(1) && gate_b.size(0) == E, "fused_router: gate_w must be [experts, ",
                  x.size(1), "] and gate_b [experts], got ", gate_w.sizes(), " and ", gate_b.sizes());
  MOE_CHECK_VALUE(E >= 1 && k >= 1 && k <= E, "k must be in [1, num_experts=", E, "], got ", k);
  MOE_CHECK_VALUE(fused_router_applies(x, gate_w, gate_b), "fused_router needs float32 CPU tensors, at least one "
                  "input and a CPU with AVX-512F; use narrow_linear, topk_gate and the loss ops elsewhere");
  const auto out = FusedRouterFunction::apply(x.contiguous(), gate_w.contiguous(), gate_b.contiguous(), k);
  return RouterOutput{out[0], out[1], out[2], out[3], out[4], out[5]};
}

}  // namespace moe::ops
