// Combine: the weighted return of the expert outputs to their tokens, the dual of permute.
// Plain C++ on raw pointers (no torch).
//   rows [A,H] (expert-contiguous), weights [T,k], assignment_to_sorted [A] -> y [T,H]
//   forward:  y[t] = sum_j weights[t,j] * rows[assignment_to_sorted[t*k+j]]
//   backward: grad_rows[assignment_to_sorted[t*k+j]] = weights[t,j] * grad_y[t]
//             grad_weights[t,j] = <rows[assignment_to_sorted[t*k+j]], grad_y[t]>
// Every output element is written by exactly one token, so no atomics and a fixed summation order.
// The maps may point into the capacity layout (see permute.h): the reference leaves rows that no
// assignment names untouched (the caller zero-fills); the CUDA backward writes zeros there itself.
#pragma once
#include <cstdint>

namespace moe::kernels {

template <typename scalar_t>
void combine_forward_ref(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_sorted,
                         int64_t T, int64_t k, int64_t H, scalar_t* y);
template <typename scalar_t>
void combine_backward_ref(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_sorted,
                          const scalar_t* grad_y, int64_t T, int64_t k, int64_t H, scalar_t* grad_rows,
                          scalar_t* grad_weights);

// CPU versions (combine_cpu.cpp): float accumulation in the same j order, SIMD inner loops over H. They
// touch only tokens [0, T) of the pointers given, so the caller splits tokens across threads by offsets.
template <typename scalar_t>
void combine_forward_cpu(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_sorted,
                         int64_t T, int64_t k, int64_t H, scalar_t* y);
template <typename scalar_t>
void combine_backward_cpu(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_sorted,
                          const scalar_t* grad_y, int64_t T, int64_t k, int64_t H, scalar_t* grad_rows,
                          scalar_t* grad_weights);

// CUDA launchers (combine_cuda.cu): device pointers, enqueued on `stream` (a cudaStream_t). The backward
// writes all R rows of grad_rows (row_to_assignment = -1 -> zeros); grad_weights is one warp-reduced dot
// product per assignment, in a fixed order.
template <typename scalar_t>
void combine_forward_cuda(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_row,
                          int64_t T, int64_t k, int64_t H, scalar_t* y, void* stream);
template <typename scalar_t>
void combine_backward_cuda(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_row,
                           const int64_t* row_to_assignment, const scalar_t* grad_y, int64_t T, int64_t k,
                           int64_t H, int64_t R, scalar_t* grad_rows, scalar_t* grad_weights, void* stream);

}  // namespace moe::kernels
