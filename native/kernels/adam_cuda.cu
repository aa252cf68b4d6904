// CUDA Adam over the flat parameter buffer: one launch for the whole model, grid-stride, with the step
// count and learning rate read from device memory (graph-replay safe).
#include "adam.h"
#include "cuda_check.cuh"

namespace moe::kernels {
namespace {

__global__ void adam_kernel(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                            float* __restrict__ v, int64_t n, const float* __restrict__ lr,
                            const int64_t* __restrict__ step, AdamHyper hyper) {
  const double t = static_cast<double>(*step);
  const float step_size = static_cast<float>(static_cast<double>(*lr) / (1.0 - pow(static_cast<double>(hyper.beta1), t)));
  const float bias_correction2_sqrt = static_cast<float>(sqrt(1.0 - pow(static_cast<double>(hyper.beta2), t)));
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grads[i];
    const float mi = m[i] * hyper.beta1 + g * (1.0f - hyper.beta1);
    const float vi = v[i] * hyper.beta2 + (1.0f - hyper.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] -= step_size * (mi / (sqrtf(vi) / bias_correction2_sqrt + hyper.eps));
  }
}

}  // namespace

void adam_step_cuda(float* params, const float* grads, float* exp_avg, float* exp_avg_sq, int64_t n,
                    const float* lr, const int64_t* step, const AdamHyper& hyper, void* stream) {
  if (n == 0) return;
  constexpr int kThreads = 256;
  const unsigned int blocks = cuda::blocks_for(n, kThreads) < 1024 ? cuda::blocks_for(n, kThreads) : 1024;
  adam_kernel<<<blocks, kThreads, 0, cuda::as_stream(stream)>>>(params, grads, exp_avg, exp_avg_sq, n, lr, step,
                                                                hyper);
  cuda::check_launch("adam kernel");
}

}  // namespace moe::kernels
