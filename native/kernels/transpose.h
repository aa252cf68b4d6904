// A float matrix transposed into another buffer, [rows, cols] -> [cols, rows], both contiguous: the
// experts' training forward turns the weights [out, in] of an expert with many rows into [in, out] for
// kernels::row_gemm.
// On AVX-512 in 16x16 register blocks (`npm run bench:kernels` times it against ATen's strided copy); a
// plain loop elsewhere and for the edges. Plain C++ on raw pointers (no torch).
#pragma once
#include <cstdint>

namespace moe::kernels {

void transpose(const float* src, int64_t rows, int64_t cols, float* dst);

}  // namespace moe::kernels
