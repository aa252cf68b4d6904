// Scan for NaN/Infinity in a float buffer: the dataset check of every train/evaluate/predict call, one
// pass at memory speed instead of ATen's isfinite + all (which allocates a mask as large as the data).
#pragma once
#include <cstdint>

namespace moe::kernels {

// Index of the first value in data[0, n) that is NaN or +-Infinity, or -1 when all are finite.
int64_t first_non_finite(const float* data, int64_t n);

}  // namespace moe::kernels
