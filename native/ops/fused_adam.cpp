#include "fused_adam.h"

#include "checks.h"
#include "cuda_support.h"

namespace moe::ops {

void fused_adam_step(const at::Tensor& params, const at::Tensor& grads, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, const at::Tensor& lr, const at::Tensor& step,
                     const kernels::AdamHyper& hyper) {
  for (const at::Tensor* t : {&params, &grads, &exp_avg, &exp_avg_sq}) {
    MOE_CHECK_TYPE(t->scalar_type() == at::kFloat && t->is_contiguous() && t->dim() == 1,
                   "adam buffers must be contiguous 1-d float32 tensors");
    MOE_CHECK_VALUE(t->numel() == params.numel() && t->device() == params.device(),
                    "adam buffers must have the same length and device");
  }
  MOE_CHECK_TYPE(lr.scalar_type() == at::kFloat && lr.numel() == 1 && step.scalar_type() == at::kLong &&
                     step.numel() == 1,
                 "adam lr must be one float32 and step one int64");
  check_device_supported(params, "params");
  at::NoGradGuard no_grad;
  step.add_(1);
  const int64_t n = params.numel();
  if (params.is_cuda()) {
    kernels::adam_step_cuda(params.data_ptr<float>(), grads.data_ptr<float>(), exp_avg.data_ptr<float>(),
                            exp_avg_sq.data_ptr<float>(), n, lr.data_ptr<float>(), step.data_ptr<int64_t>(), hyper,
                            current_cuda_stream());
  } else {
    kernels::adam_step_ref(params.data_ptr<float>(), grads.data_ptr<float>(), exp_avg.data_ptr<float>(),
                           exp_avg_sq.data_ptr<float>(), n, lr.item<double>(), step.item<int64_t>(), hyper);
  }
}

}  // namespace moe::ops
