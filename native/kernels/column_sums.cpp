// One pass over the rows, each adding its row to the sums: the inner loop over contiguous columns is SIMD
// code (built for AVX2 and the baseline).
#include "column_sums.h"

#include <algorithm>

#include "simd_clones.h"

namespace moe::kernels {

MOE_SIMD_CLONES
void column_sums(const float* __restrict x, int64_t n, int64_t cols, int64_t ld, float* __restrict out) {
  std::fill(out, out + cols, 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[c] += x[r * ld + c];
  }
}

}  // namespace moe::kernels
