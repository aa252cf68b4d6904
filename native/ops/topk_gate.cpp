// Autograd wrapper of kernels/topk_gate: checks, contiguous inputs, outputs allocated here, one kernel
// call per direction; the device branch picks the CPU or the CUDA kernel (same contract, same tie rule).
#include "topk_gate.h"

#include <torch/autograd.h>

#include "../kernels/topk_gate.h"
#include "checks.h"
#include "cuda_support.h"

namespace moe::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct TopKGateFunction : public torch::autograd::Function<TopKGateFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& logits_in, int64_t k) {
    const at::Tensor logits = logits_in.contiguous();
    const int64_t T = logits.size(0), E = logits.size(1);
    auto probs = at::empty({T, E}, logits.options());
    auto weights = at::empty({T, k}, logits.options());
    auto prob_sums = at::empty({E}, logits.options());
    auto idx = at::empty({T, k}, logits.options().dtype(at::kLong));
    auto counts = at::empty({E}, logits.options().dtype(at::kLong));
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "topk_gate_forward", [&] {
      if (logits.is_cuda()) {
        kernels::topk_gate_forward_cuda<scalar_t>(logits.data_ptr<scalar_t>(), T, E, k, probs.data_ptr<scalar_t>(),
                                                  idx.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
                                                  counts.data_ptr<int64_t>(), prob_sums.data_ptr<scalar_t>(),
                                                  current_cuda_stream());
      } else {
        kernels::topk_gate_forward_cpu<scalar_t>(logits.data_ptr<scalar_t>(), T, E, k, probs.data_ptr<scalar_t>(),
                                                 idx.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
                                                 counts.data_ptr<int64_t>(), prob_sums.data_ptr<scalar_t>());
      }
    });
    ctx->save_for_backward({probs, idx, weights});
    ctx->mark_non_differentiable({idx, counts, probs});
    return {weights, prob_sums, idx, counts, probs};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& probs = saved[0];
    const at::Tensor& idx = saved[1];
    const at::Tensor& weights = saved[2];
    const int64_t T = probs.size(0), E = probs.size(1), k = idx.size(1);
    // An output that did not reach the loss arrives as an undefined gradient: treat it as zero.
    at::Tensor grad_weights = grads[0].defined() ? grads[0].contiguous() : at::zeros_like(weights);
    at::Tensor grad_prob_sums =
        grads[1].defined() ? grads[1].contiguous() : at::zeros({E}, probs.options());
    auto grad_logits = at::empty({T, E}, probs.options());
    AT_DISPATCH_FLOATING_TYPES(probs.scalar_type(), "topk_gate_backward", [&] {
      if (probs.is_cuda()) {
        kernels::topk_gate_backward_cuda<scalar_t>(
            probs.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
            grad_weights.data_ptr<scalar_t>(), grad_prob_sums.data_ptr<scalar_t>(), T, E, k,
            grad_logits.data_ptr<scalar_t>(), current_cuda_stream());
      } else {
        kernels::topk_gate_backward_cpu<scalar_t>(
            probs.data_ptr<scalar_t>(), idx.data_ptr<int64_t>(), weights.data_ptr<scalar_t>(),
            grad_weights.data_ptr<scalar_t>(), grad_prob_sums.data_ptr<scalar_t>(), T, E, k,
            grad_logits.data_ptr<scalar_t>());
      }
    });
    return {grad_logits, at::Tensor()};
  }
};

}  // namespace

GateOutput topk_gate(const at::Tensor& logits, int64_t k) {
  check_float(logits, "logits");
  check_dim(logits, 2, "logits");
  check_device_supported(logits, "logits");
  const int64_t E = logits.size(1);
  MOE_CHECK_VALUE(E >= 1, "logits must have at least one expert column, got shape ", logits.sizes());
  MOE_CHECK_VALUE(k >= 1 && k <= E, "k must be in [1, num_experts=", E, "], got ", k);
  auto out = TopKGateFunction::apply(logits, k);
  return GateOutput{out[0], out[1], out[2], out[3], out[4]};
}

}  // namespace moe::ops
