// CUDA path of the top-k gate. Forward: one thread per token computes the softmax, picks the top k by
// k selection passes (no per-token scratch array, any E), and renormalises; a second kernel reduces the
// per-expert counts and probability sums with one block per expert in a fixed order (no float atomics,
// so a seeded run repeats bit for bit). Backward: one thread per token, the formula of the reference.
#include "cuda_check.cuh"
#include "topk_gate.h"

namespace moe::kernels {
namespace {

constexpr int kThreads = 256;

// Ranks (p, e) pairs: higher probability first, lower expert index first among equals.
template <typename scalar_t>
__device__ bool ranks_before(scalar_t pa, int64_t a, scalar_t pb, int64_t b) {
  return pa > pb || (pa == pb && a < b);
}

template <typename scalar_t>
__global__ void gate_forward_kernel(const scalar_t* __restrict__ logits, int64_t T, int64_t E, int64_t k,
                                    scalar_t* __restrict__ probs, int64_t* __restrict__ idx,
                                    scalar_t* __restrict__ weights) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= T) return;
  const scalar_t* z = logits + t * E;
  scalar_t* p = probs + t * E;
  double zmax = z[0];
  for (int64_t e = 1; e < E; ++e) zmax = fmax(zmax, static_cast<double>(z[e]));
  double denom = 0.0;
  for (int64_t e = 0; e < E; ++e) denom += exp(static_cast<double>(z[e]) - zmax);
  for (int64_t e = 0; e < E; ++e) p[e] = static_cast<scalar_t>(exp(static_cast<double>(z[e]) - zmax) / denom);
  // Selection pass j finds the best pair ranked after pick j-1: O(k*E) reads, no scratch memory.
  double selected = 0.0;
  int64_t prev = -1;
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = -1;
    for (int64_t e = 0; e < E; ++e) {
      if (prev >= 0 && !ranks_before(p[prev], prev, p[e], e)) continue;
      if (best < 0 || ranks_before(p[e], e, p[best], best)) best = e;
    }
    idx[t * k + j] = best;
    selected += static_cast<double>(p[best]);
    prev = best;
  }
  for (int64_t j = 0; j < k; ++j) {
    weights[t * k + j] = static_cast<scalar_t>(static_cast<double>(p[idx[t * k + j]]) / selected);
  }
}

// Block e: counts[e] = #{a : idx[a] == e}, prob_sums[e] = sum_t probs[t,e]; fixed-order tree reduction.
template <typename scalar_t>
__global__ void gate_column_sums_kernel(const scalar_t* __restrict__ probs, const int64_t* __restrict__ idx,
                                        int64_t T, int64_t E, int64_t k, int64_t* __restrict__ counts,
                                        scalar_t* __restrict__ prob_sums) {
  __shared__ double sum_shared[kThreads];
  __shared__ int64_t count_shared[kThreads];
  const int64_t e = blockIdx.x;
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t t = threadIdx.x; t < T; t += blockDim.x) sum += static_cast<double>(probs[t * E + e]);
  for (int64_t a = threadIdx.x; a < T * k; a += blockDim.x) count += idx[a] == e;
  sum_shared[threadIdx.x] = sum;
  count_shared[threadIdx.x] = count;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      sum_shared[threadIdx.x] += sum_shared[threadIdx.x + stride];
      count_shared[threadIdx.x] += count_shared[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    prob_sums[e] = static_cast<scalar_t>(sum_shared[0]);
    counts[e] = count_shared[0];
  }
}

template <typename scalar_t>
__global__ void gate_backward_kernel(const scalar_t* __restrict__ probs, const int64_t* __restrict__ idx,
                                     const scalar_t* __restrict__ weights,
                                     const scalar_t* __restrict__ grad_weights,
                                     const scalar_t* __restrict__ grad_prob_sums, int64_t T, int64_t E,
                                     int64_t k, scalar_t* __restrict__ grad_logits) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= T) return;
  const scalar_t* p = probs + t * E;
  scalar_t* g = grad_logits + t * E;
  // prob_sums path: dz_e = p_e (g_e - sum_j p_j g_j)
  double pg = 0.0;
  for (int64_t e = 0; e < E; ++e) pg += static_cast<double>(p[e]) * grad_prob_sums[e];
  for (int64_t e = 0; e < E; ++e) g[e] = static_cast<scalar_t>(p[e] * (grad_prob_sums[e] - pg));
  // weights path (softmax over the selected logits): dz_{s_m} = w_m (g_m - sum_j w_j g_j)
  double wg = 0.0;
  for (int64_t j = 0; j < k; ++j) wg += static_cast<double>(weights[t * k + j]) * grad_weights[t * k + j];
  for (int64_t j = 0; j < k; ++j) {
    const int64_t e = idx[t * k + j];
    g[e] = static_cast<scalar_t>(static_cast<double>(g[e]) +
                                 static_cast<double>(weights[t * k + j]) * (grad_weights[t * k + j] - wg));
  }
}

}  // namespace

template <typename scalar_t>
void topk_gate_forward_cuda(const scalar_t* logits, int64_t T, int64_t E, int64_t k, scalar_t* probs,
                            int64_t* idx, scalar_t* weights, int64_t* counts, scalar_t* prob_sums,
                            void* stream) {
  const cudaStream_t s = cuda::as_stream(stream);
  if (T > 0) {
    gate_forward_kernel<scalar_t><<<cuda::blocks_for(T, kThreads), kThreads, 0, s>>>(logits, T, E, k, probs,
                                                                                     idx, weights);
    cuda::check_launch("topk_gate forward kernel");
  }
  gate_column_sums_kernel<scalar_t><<<static_cast<unsigned int>(E), kThreads, 0, s>>>(probs, idx, T, E, k,
                                                                                       counts, prob_sums);
  cuda::check_launch("topk_gate column sums kernel");
}

template <typename scalar_t>
void topk_gate_backward_cuda(const scalar_t* probs, const int64_t* idx, const scalar_t* weights,
                             const scalar_t* grad_weights, const scalar_t* grad_prob_sums, int64_t T,
                             int64_t E, int64_t k, scalar_t* grad_logits, void* stream) {
  if (T == 0) return;
  gate_backward_kernel<scalar_t><<<cuda::blocks_for(T, kThreads), kThreads, 0, cuda::as_stream(stream)>>>(
      probs, idx, weights, grad_weights, grad_prob_sums, T, E, k, grad_logits);
  cuda::check_launch("topk_gate backward kernel");
}

template void topk_gate_forward_cuda<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t*, float*,
                                            int64_t*, float*, void*);
template void topk_gate_forward_cuda<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t*,
                                             double*, int64_t*, double*, void*);
template void topk_gate_backward_cuda<float>(const float*, const int64_t*, const float*, const float*,
                                             const float*, int64_t, int64_t, int64_t, float*, void*);
template void topk_gate_backward_cuda<double>(const double*, const int64_t*, const double*, const double*,
                                              const double*, int64_t, int64_t, int64_t, double*, void*);

}  // namespace moe::kernels
