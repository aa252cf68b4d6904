// Column sums of a row-major matrix: the bias gradients of the experts and of the narrow layers (the sum
// over a batch's rows of the output gradient). Plain C++ on raw pointers (no torch).
#pragma once
#include <cstdint>

namespace moe::kernels {

// out[c] = sum over r in [0, n) of x[r * ld + c], for c in [0, cols); each column summed in row order.
void column_sums(const float* x, int64_t n, int64_t cols, int64_t ld, float* out);

}  // namespace moe::kernels
