// The CPU dispatch kernels (kernels/combine, kernels/permute) over all tokens on ATen's intra-op threads:
// each task takes a contiguous range of tokens, about 16k values of work. Shared by the separate
// permute/combine nodes (ops/dispatch) and the fused one (ops/routed_experts). at::parallel_for does not
// carry thread-local state (grad or inference mode) to its threads, so only raw pointers go in.
// assignment_to_row [T*k] maps each token's choices to its rows, as in kernels/combine.h.
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "../kernels/combine.h"
#include "../kernels/permute.h"

namespace moe::ops {

// Calls fn(first_token, count) over [0, T) in ranges.
template <typename Fn>
void for_token_ranges(int64_t T, int64_t H, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(H, 1));
  at::parallel_for(0, T, grain, [&](int64_t begin, int64_t end) { fn(begin, end - begin); });
}

// y [T,H] = the weighted sum of each token's k rows.
template <typename scalar_t>
void combine_forward_threaded(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_row,
                              int64_t T, int64_t k, int64_t H, scalar_t* y) {
  for_token_ranges(T, H, [&](int64_t t0, int64_t n) {
    kernels::combine_forward_cpu<scalar_t>(rows, weights + t0 * k, assignment_to_row + t0 * k, n, k, H, y + t0 * H);
  });
}

// Each assignment's row gradient (into grad_rows, rows as assignment_to_row names them) and weight gradient.
template <typename scalar_t>
void combine_backward_threaded(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_row,
                               const scalar_t* grad_y, int64_t T, int64_t k, int64_t H, scalar_t* grad_rows,
                               scalar_t* grad_weights) {
  for_token_ranges(T, H, [&](int64_t t0, int64_t n) {
    kernels::combine_backward_cpu<scalar_t>(rows, weights + t0 * k, assignment_to_row + t0 * k, grad_y + t0 * H, n,
                                            k, H, grad_rows, grad_weights + t0 * k);
  });
}

// grad_x [T,H]: each token's gradient, the sum of its k rows' in a fixed order.
template <typename scalar_t>
void permute_backward_threaded(const scalar_t* grad_rows, const int64_t* assignment_to_row, int64_t T, int64_t k,
                               int64_t H, scalar_t* grad_x) {
  for_token_ranges(T, H, [&](int64_t t0, int64_t n) {
    kernels::permute_backward_cpu<scalar_t>(grad_rows, assignment_to_row + t0 * k, n, k, H, grad_x + t0 * H);
  });
}

}  // namespace moe::ops
