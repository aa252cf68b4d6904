#include "fused_adam.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>

#include "checks.h"
#include "cuda_support.h"

namespace moe::ops {
namespace {

// The flat buffers (and a flat gradient, when given) must be one length, layout and device.
void check_moments(const at::Tensor& params, const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq,
                   const at::Tensor& lr, const at::Tensor& step, const at::Tensor* flat_grads = nullptr) {
  for (const at::Tensor* t : {&params, &exp_avg, &exp_avg_sq, flat_grads}) {
    if (!t) continue;
    MOE_CHECK_TYPE(t->scalar_type() == at::kFloat && t->is_contiguous() && t->dim() == 1,
                   "adam buffers must be contiguous 1-d float32 tensors");
    MOE_CHECK_VALUE(t->numel() == params.numel() && t->device() == params.device(),
                    "adam buffers must have the same length and device");
  }
  MOE_CHECK_TYPE(lr.scalar_type() == at::kFloat && lr.numel() == 1 && step.scalar_type() == at::kLong &&
                     step.numel() == 1 && lr.device() == params.device() && step.device() == params.device(),
                 "adam lr must be one float32 and step one int64, on the buffers' device");
  check_device_supported(params, "params");
}

// The CPU step: grads[i] holds the gradient of the next grads[i].numel() values of the flat buffers.
// The range is cut into chunks that the threads take in turn from a shared counter (not halves fixed in
// advance): in a training step the buffers come partly from memory, and a thread whose half is colder in
// cache would otherwise keep the other waiting. Each chunk walks the gradient segments it overlaps.
void adam_cpu(const at::Tensor& params, const std::vector<at::Tensor>& grads, const at::Tensor& exp_avg,
              const at::Tensor& exp_avg_sq, double lr, int64_t step, const kernels::AdamHyper& hyper) {
  std::vector<int64_t> starts(grads.size() + 1, 0);
  for (size_t i = 0; i < grads.size(); ++i) starts[i + 1] = starts[i] + grads[i].numel();
  float *p = params.data_ptr<float>(), *m = exp_avg.data_ptr<float>(), *v = exp_avg_sq.data_ptr<float>();
  const auto update = [&](int64_t begin, int64_t end) {
    for (size_t i = 0; i < grads.size(); ++i) {
      const int64_t lo = std::max(begin, starts[i]), hi = std::min(end, starts[i + 1]);
      if (lo >= hi) continue;
      const float* g = grads[i].data_ptr<float>() + (lo - starts[i]);
      kernels::adam_step_cpu(p + lo, g, m + lo, v + lo, hi - lo, lr, step, hyper);
    }
  };
  constexpr int64_t kChunk = 1 << 15;  // values per chunk: enough to amortise taking it
  const int64_t n = params.numel(), chunks = (n + kChunk - 1) / kChunk;
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), chunks);
  if (threads <= 1) return update(0, n);
  std::atomic<int64_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    for (int64_t c = next++; c < chunks; c = next++) update(c * kChunk, std::min(n, (c + 1) * kChunk));
  });
}

}  // namespace

void fused_adam_step(const at::Tensor& params, const at::Tensor& grads, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, const at::Tensor& lr, const at::Tensor& step,
                     const kernels::AdamHyper& hyper) {
  check_moments(params, exp_avg, exp_avg_sq, lr, step, &grads);
  at::NoGradGuard no_grad;
  step.add_(1);
  if (params.is_cuda()) {
    kernels::adam_step_cuda(params.data_ptr<float>(), grads.data_ptr<float>(), exp_avg.data_ptr<float>(),
                            exp_avg_sq.data_ptr<float>(), params.numel(), lr.data_ptr<float>(),
                            step.data_ptr<int64_t>(), hyper, current_cuda_stream());
  } else {
    adam_cpu(params, {grads}, exp_avg, exp_avg_sq, lr.item<double>(), step.item<int64_t>(), hyper);
  }
}

void fused_adam_step(const at::Tensor& params, at::TensorList grads, const at::Tensor& exp_avg,
                     const at::Tensor& exp_avg_sq, const at::Tensor& lr, const at::Tensor& step,
                     const kernels::AdamHyper& hyper) {
  check_moments(params, exp_avg, exp_avg_sq, lr, step);
  MOE_CHECK_VALUE(params.is_cpu(), "adam with per-parameter gradients runs on the CPU only");
  std::vector<at::Tensor> contiguous;
  contiguous.reserve(grads.size());
  int64_t total = 0;
  for (const at::Tensor& g : grads) {
    MOE_CHECK_TYPE(g.defined() && g.scalar_type() == at::kFloat && g.is_cpu(),
                   "adam gradients must be defined float32 CPU tensors");
    contiguous.push_back(g.contiguous());
    total += g.numel();
  }
  MOE_CHECK_VALUE(total == params.numel(), "adam gradients hold ", total, " values but params has ",
                  params.numel());
  at::NoGradGuard no_grad;
  step.add_(1);
  adam_cpu(params, contiguous, exp_avg, exp_avg_sq, lr.item<double>(), step.item<int64_t>(), hyper);
}

}  // namespace moe::ops
