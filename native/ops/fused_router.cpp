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

struct FusedRouterFunction : public torch::autograd::Function<FusedRouterFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                               int64_t k) {
    const int64_t T = x.size(0), H = x.size(1), E = w.size(0);
    const at::TensorOptions f = x.options(), i64 = x.options().dtype(at::kLong);
    at::Tensor logits = at::empty({T, E}, f), lse = at::empty({T}, f), probs = at::empty({T, E}, f);
    at::Tensor weights = at::empty({T, k}, f), prob_sums = at::empty({E}, f);
    at::Tensor idx = at::empty({T, k}, i64), counts = at::empty({E}, i64);
    kernels::row_gemm_nt(x.data_ptr<float>(), H, T, w.data_ptr<float>(), H, E, H, b.data_ptr<float>(),
                         logits.data_ptr<float>(), E);
    const double z = kernels::router_z_loss_forward_cpu<float>(logits.data_ptr<float>(), T, E, lse.data_ptr<float>());
    kernels::topk_gate_forward_cpu<float>(logits.data_ptr<float>(), T, E, k, probs.data_ptr<float>(),
                                          idx.data_ptr<int64_t>(), weights.data_ptr<float>(),
                                          counts.data_ptr<int64_t>(), prob_sums.data_ptr<float>());
    // load_balancing_loss's formula: E/(T*T) * sum_e counts_e * prob_sums_e, in double.
    const double scale = static_cast<double>(E) / (static_cast<double>(T) * static_cast<double>(T));
    double aux = 0;
    const int64_t* c = counts.data_ptr<int64_t>();
    const float* p = prob_sums.data_ptr<float>();
    for (int64_t e = 0; e < E; ++e) aux += static_cast<double>(c[e]) * static_cast<double>(p[e]);
    ctx->save_for_backward({x, w, logits, lse, probs, idx, weights, counts});
    ctx->saved_data["scale"] = scale;
    ctx->mark_non_differentiable({idx, counts, prob_sums});
    return {weights, at::scalar_tensor(aux * scale, f), at::scalar_tensor(z, f), idx, counts, prob_sums};
  }

  // grads: weights, aux_loss, z_loss (each undefined where it did not reach the loss), then the three
  // non-differentiable outputs.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &logits = saved[2], &lse = saved[3], &probs = saved[4];
    const at::Tensor &idx = saved[5], &weights = saved[6], &counts = saved[7];
    const int64_t T = x.size(0), H = x.size(1), E = w.size(0), k = idx.size(1);
    const at::Tensor grad_weights = grads[0].defined() ? grads[0].contiguous() : at::zeros_like(weights);
    // The aux loss is linear in prob_sums with coefficients scale * counts_e (the counts come from a top-k).
    at::Tensor grad_prob_sums = at::empty({E}, probs.options());
    const double g_aux = grads[1].defined() ? grads[1].item<double>() * ctx->saved_data["scale"].toDouble() : 0.0;
    const int64_t* c = counts.data_ptr<int64_t>();
    float* gp = grad_prob_sums.data_ptr<float>();
    for (int64_t e = 0; e < E; ++e) gp[e] = static_cast<float>(g_aux * static_cast<double>(c[e]));
    at::Tensor grad_logits = at::empty({T, E}, probs.options());
    kernels::topk_gate_backward_cpu<float>(probs.data_ptr<float>(), idx.data_ptr<int64_t>(), weights.data_ptr<float>(),
                                           grad_weights.data_ptr<float>(), gp, T, E, k, grad_logits.data_ptr<float>());
    if (grads[2].defined()) {
      at::Tensor from_z = at::empty({T, E}, probs.options());
      kernels::router_z_loss_backward_cpu<float>(logits.data_ptr<float>(), lse.data_ptr<float>(), T, E,
                                                 grads[2].item<double>(), from_z.data_ptr<float>());
      float* g = grad_logits.data_ptr<float>();
      const float* z = from_z.data_ptr<float>();
      for (int64_t i = 0; i < T * E; ++i) g[i] += z[i];
    }
    // The gate's linear map, as in narrow_linear's backward.
    const float* g = grad_logits.data_ptr<float>();
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
