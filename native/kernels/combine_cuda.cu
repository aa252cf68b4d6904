// CUDA path of combine: y[t] = sum_j w[t,j] rows[row(t,j)] as one block per token, and its backward as one
// pass over all rows (padding rows get zeros) plus one warp per assignment for the weight gradients.
// Each output has a single writer and a fixed summation order: no atomics, repeatable bit for bit.
#include "combine.h"
#include "cuda_check.cuh"

namespace moe::kernels {
namespace {

template <typename scalar_t>
__global__ void combine_forward_kernel(const scalar_t* __restrict__ rows, const scalar_t* __restrict__ weights,
                                       const int64_t* __restrict__ a2r, int64_t k, int64_t H,
                                       scalar_t* __restrict__ y) {
  const int64_t t = blockIdx.x;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x) {
    scalar_t acc = 0;
    for (int64_t j = 0; j < k; ++j) acc += weights[t * k + j] * rows[a2r[t * k + j] * H + h];
    y[t * H + h] = acc;
  }
}

template <typename scalar_t>
__global__ void combine_grad_rows_kernel(const scalar_t* __restrict__ weights, const int64_t* __restrict__ r2a,
                                         const scalar_t* __restrict__ grad_y, int64_t k, int64_t H,
                                         scalar_t* __restrict__ grad_rows) {
  const int64_t r = blockIdx.x;
  const int64_t a = r2a[r];
  const scalar_t w = a < 0 ? scalar_t(0) : weights[a];
  const scalar_t* gy = a < 0 ? nullptr : grad_y + (a / k) * H;
  for (int64_t h = threadIdx.x; h < H; h += blockDim.x) grad_rows[r * H + h] = a < 0 ? scalar_t(0) : w * gy[h];
}

// One warp per assignment: lane-strided partial dots, then a shuffle tree (fixed order).
template <typename scalar_t>
__global__ void combine_grad_weights_kernel(const scalar_t* __restrict__ rows, const int64_t* __restrict__ a2r,
                                            const scalar_t* __restrict__ grad_y, int64_t A, int64_t k, int64_t H,
                                            scalar_t* __restrict__ grad_weights) {
  const int64_t a = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (a >= A) return;  // whole warps leave together: A is per warp
  const scalar_t* row = rows + a2r[a] * H;
  const scalar_t* gy = grad_y + (a / k) * H;
  scalar_t acc = 0;
  for (int64_t h = lane; h < H; h += 32) acc += row[h] * gy[h];
  for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
  if (lane == 0) grad_weights[a] = acc;
}

}  // namespace

template <typename scalar_t>
void combine_forward_cuda(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_row,
                          int64_t T, int64_t k, int64_t H, scalar_t* y, void* stream) {
  if (T == 0 || H == 0) return;
  combine_forward_kernel<scalar_t><<<static_cast<unsigned int>(T), cuda::threads_for_row(H), 0,
                                     cuda::as_stream(stream)>>>(
      rows, weights, assignment_to_row, k, H, y);
  cuda::check_launch("combine forward kernel");
}

template <typename scalar_t>
void combine_backward_cuda(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_row,
                           const int64_t* row_to_assignment, const scalar_t* grad_y, int64_t T, int64_t k,
                           int64_t H, int64_t R, scalar_t* grad_rows, scalar_t* grad_weights, void* stream) {
  const cudaStream_t s = cuda::as_stream(stream);
  if (R > 0 && H > 0) {
    combine_grad_rows_kernel<scalar_t><<<static_cast<unsigned int>(R), cuda::threads_for_row(H), 0, s>>>(
        weights, row_to_assignment, grad_y, k, H, grad_rows);
    cuda::check_launch("combine backward (rows) kernel");
  }
  const int64_t A = T * k;
  if (A > 0) {
    constexpr int kThreads = 256;  // 8 warps, 8 assignments per block
    combine_grad_weights_kernel<scalar_t><<<cuda::blocks_for(A * 32, kThreads), kThreads, 0, s>>>(
        rows, assignment_to_row, grad_y, A, k, H, grad_weights);
    cuda::check_launch("combine backward (weights) kernel");
  }
}

template void combine_forward_cuda<float>(const float*, const float*, const int64_t*, int64_t, int64_t, int64_t,
                                          float*, void*);
template void combine_forward_cuda<double>(const double*, const double*, const int64_t*, int64_t, int64_t,
                                           int64_t, double*, void*);
template void combine_backward_cuda<float>(const float*, const float*, const int64_t*, const int64_t*,
                                           const float*, int64_t, int64_t, int64_t, int64_t, float*, float*,
                                           void*);
template void combine_backward_cuda<double>(const double*, const double*, const int64_t*, const int64_t*,
                                            const double*, int64_t, int64_t, int64_t, int64_t, double*, double*,
                                            void*);

}  // namespace moe::kernels
