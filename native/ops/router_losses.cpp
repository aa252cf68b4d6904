#include "router_losses.h"

#include <torch/autograd.h>

#include "../kernels/router_z_loss.h"
#include "checks.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct RouterZLossFunction : public torch::autograd::Function<RouterZLossFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits_in) {
    const at::Tensor logits = logits_in.contiguous();
    const int64_t T = logits.size(0), E = logits.size(1);
    at::Tensor lse = at::empty({T}, logits.options());
    double z = 0;
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "router_z_loss_forward", [&] {
      z = kernels::router_z_loss_forward_cpu<scalar_t>(logits.data_ptr<scalar_t>(), T, E, lse.data_ptr<scalar_t>());
    });
    ctx->save_for_backward({logits, lse});
    return at::scalar_tensor(z, logits.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &logits = saved[0], &lse = saved[1];
    const int64_t T = logits.size(0), E = logits.size(1);
    at::Tensor grad_logits = at::empty_like(logits);
    const double grad_z = grads[0].item<double>();
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "router_z_loss_backward", [&] {
      kernels::router_z_loss_backward_cpu<scalar_t>(logits.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>(), T, E,
                                                    grad_z, grad_logits.data_ptr<scalar_t>());
    });
    return {grad_logits};
  }
};

// The counts are fixed numbers here (they come from a top-k): the loss is linear in prob_sums, with
// coefficients scale * counts_e.
struct BalanceLossFunction : public torch::autograd::Function<BalanceLossFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& prob_sums_in, const at::Tensor& counts_in,
                            double scale) {
    const at::Tensor prob_sums = prob_sums_in.contiguous(), counts = counts_in.contiguous();
    const int64_t* c = counts.data_ptr<int64_t>();
    double loss = 0;
    AT_DISPATCH_FLOATING_TYPES(prob_sums.scalar_type(), "balance_loss_forward", [&] {
      const scalar_t* p = prob_sums.data_ptr<scalar_t>();
      for (int64_t e = 0; e < prob_sums.size(0); ++e) loss += static_cast<double>(c[e]) * static_cast<double>(p[e]);
    });
    ctx->save_for_backward({counts});
    ctx->saved_data["scale"] = scale;
    return at::scalar_tensor(loss * scale, prob_sums.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor counts = ctx->get_saved_variables()[0];
    const double g = grads[0].item<double>() * ctx->saved_data["scale"].toDouble();
    at::Tensor grad = at::empty({counts.size(0)}, grads[0].options());
    const int64_t* c = counts.data_ptr<int64_t>();
    AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "balance_loss_backward", [&] {
      scalar_t* out = grad.data_ptr<scalar_t>();
      for (int64_t e = 0; e < counts.size(0); ++e) out[e] = static_cast<scalar_t>(g * static_cast<double>(c[e]));
    });
    return {grad, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor router_z_loss(const at::Tensor& logits) {
  check_float(logits, "logits");
  check_dim(logits, 2, "logits");
  MOE_CHECK_VALUE(logits.size(1) >= 1, "logits must have at least one expert column, got shape ", logits.sizes());
  if (logits.size(0) == 0) return at::zeros({}, logits.options());
  if (!logits.is_cpu()) return at::logsumexp(logits, 1).pow(2).mean();
  return RouterZLossFunction::apply(logits);
}

at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t count_tokens,
                               int64_t prob_tokens) {
  const int64_t E = prob_sums.size(0);
  MOE_CHECK_VALUE(counts.dim() == 1 && counts.size(0) == E, "counts must have shape [", E, "], got ",
                  counts.sizes());
  if (count_tokens == 0 || prob_tokens == 0) return at::zeros({}, prob_sums.options());
  const double scale = static_cast<double>(E) / (static_cast<double>(count_tokens) * static_cast<double>(prob_tokens));
  if (!prob_sums.is_cpu() || !counts.is_cpu() || counts.scalar_type() != at::kLong) {
    return at::dot(counts.to(prob_sums.scalar_type()), prob_sums) * scale;
  }
  return BalanceLossFunction::apply(prob_sums, counts, scale);
}

}  // namespace moe::ops
