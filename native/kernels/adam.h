// One Adam step over a flat float32 buffer (all parameters of a model laid end to end), in one pass.
// Same update as torch.optim.Adam (no weight decay, no amsgrad):
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
// `step` counts this step (>= 1). The CUDA launcher reads lr and step from device memory, so a step
// captured in a CUDA graph stays correct on every replay (host scalars would be frozen at capture).
#pragma once
#include <cstdint>

namespace moe::kernels {

struct AdamHyper {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
};

void adam_step_ref(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n, double lr,
                   int64_t step, const AdamHyper& hyper);

// The same update on the CPU, equal to adam_step_ref up to rounding: a hand-written AVX-512 loop where the
// CPU has it, else adam_step_cpu_portable (adam_cpu.cpp is built with -O3 -fno-math-errno). The caller
// splits [0, n) across threads by pointer offsets.
void adam_step_cpu(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n, double lr,
                   int64_t step, const AdamHyper& hyper);

// The loop without AVX-512, adam_step_ref's formula with 1/sqrt(1 - b2^step) multiplied in, which the
// compiler vectorises (an AVX2 clone and a baseline one); public so that tests run it on every CPU.
void adam_step_cpu_portable(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n,
                            double lr, int64_t step, const AdamHyper& hyper);

// lr: one float, step: one int64, both device memory.
void adam_step_cuda(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n,
                    const float* lr, const int64_t* step, const AdamHyper& hyper, void* stream);

}  // namespace moe::kernels
