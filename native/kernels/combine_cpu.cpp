// CPU combine: per token, k scaled row additions (forward) or k scaled copies and dot products (backward).
// The inner loops run over H contiguous values, which the compiler turns into SIMD code (the dot products
// through partial sums).
#include "combine.h"
#include "simd_clones.h"

namespace moe::kernels {
namespace {

// sum_h a[h] * b[h] in kLanes partial sums: one running sum would be a chain of dependent adds (the
// compiler may not reorder float sums), the partial sums become SIMD lanes.
template <typename scalar_t>
MOE_ALWAYS_INLINE scalar_t dot_product(const scalar_t* __restrict a, const scalar_t* __restrict b, int64_t n) {
  constexpr int64_t kLanes = 16;
  scalar_t partial[kLanes] = {};
  int64_t h = 0;
  for (; h + kLanes <= n; h += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) partial[l] += a[h + l] * b[h + l];
  }
  for (; h < n; ++h) partial[0] += a[h] * b[h];
  scalar_t sum = 0;
  for (int64_t l = 0; l < kLanes; ++l) sum += partial[l];
  return sum;
}

}  // namespace

template <typename scalar_t>
void combine_forward_cpu(const scalar_t* rows, const scalar_t* weights, const int64_t* assignment_to_sorted,
                         int64_t T, int64_t k, int64_t H, scalar_t* y) {
  for (int64_t t = 0; t < T; ++t) {
    scalar_t* __restrict out = y + t * H;
    for (int64_t h = 0; h < H; ++h) out[h] = scalar_t(0);
    for (int64_t j = 0; j < k; ++j) {
      const scalar_t w = weights[t * k + j];
      const scalar_t* __restrict row = rows + assignment_to_sorted[t * k + j] * H;
      for (int64_t h = 0; h < H; ++h) out[h] += w * row[h];
    }
  }
}

template <typename scalar_t>
MOE_SIMD_CLONES void combine_backward_cpu(const scalar_t* rows, const scalar_t* weights,
                                          const int64_t* assignment_to_sorted, const scalar_t* grad_y, int64_t T,
                                          int64_t k, int64_t H, scalar_t* grad_rows, scalar_t* grad_weights) {
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* __restrict dy = grad_y + t * H;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t s = assignment_to_sorted[t * k + j];
      const scalar_t w = weights[t * k + j];
      const scalar_t* __restrict row = rows + s * H;
      scalar_t* __restrict grad_row = grad_rows + s * H;
      for (int64_t h = 0; h < H; ++h) grad_row[h] = w * dy[h];
      grad_weights[t * k + j] = dot_product(row, dy, H);
    }
  }
}

template void combine_forward_cpu<float>(const float*, const float*, const int64_t*, int64_t, int64_t, int64_t,
                                         float*);
template void combine_forward_cpu<double>(const double*, const double*, const int64_t*, int64_t, int64_t,
                                          int64_t, double*);
template void combine_backward_cpu<float>(const float*, const float*, const int64_t*, const float*, int64_t,
                                          int64_t, int64_t, float*, float*);
template void combine_backward_cpu<double>(const double*, const double*, const int64_t*, const double*,
                                           int64_t, int64_t, int64_t, double*, double*);

}  // namespace moe::kernels
