// Combine: the weighted return of the expert outputs to their tokens, the dual of permute.
// Plain C++ on raw pointers (no torch).
//   rows [A,H] (expert-contiguous), weights [T,k], assignment_to_sorted [A] -> y [T,H]
//   forward:  y[t] = sum_j weights[t,j] * rows[assignment_to_sorted[t*k+j]]
//   backward: grad_rows[assignment_to_sorted[t*k+j]] = weights[t,j] * grad_y[t]
//             grad_weights[t,j] = <rows[assignment_to_sorted[t*k+j]], grad_y[t]>
// Every output element is written by exactly one token, so no atomics and a fixed summation order.
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

}  // namespace moe::kernels
