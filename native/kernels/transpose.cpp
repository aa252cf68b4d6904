// 16x16 blocks transposed in registers (transpose16.h), one load and one store per row of the block.
#include "transpose.h"

#include "simd_clones.h"
#include "transpose16.h"

namespace moe::kernels {
namespace {

// The block [r0, r1) x [c0, c1) one element at a time.
void transpose_plain(const float* src, int64_t cols, int64_t r0, int64_t r1, int64_t c0, int64_t c1, int64_t rows,
                     float* dst) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
  }
}

#if defined(MOE_AVX512_KERNELS)
// src: 16 rows with stride ls -> dst: 16 rows with stride ld, dst[j][i] = src[i][j].
__attribute__((target("avx512f"), always_inline)) inline void block16(const float* src, int64_t ls, float* dst,
                                                                      int64_t ld) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ls);
  transpose16_in_registers(r);
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ld, r[i]);
}

__attribute__((target("avx512f"))) void transpose_avx512(const float* src, int64_t rows, int64_t cols, float* dst) {
  const int64_t full_rows = rows / 16 * 16, full_cols = cols / 16 * 16;
  for (int64_t r = 0; r < full_rows; r += 16) {
    for (int64_t c = 0; c < full_cols; c += 16) block16(src + r * cols + c, cols, dst + c * rows + r, rows);
  }
  transpose_plain(src, cols, 0, full_rows, full_cols, cols, rows, dst);
  transpose_plain(src, cols, full_rows, rows, 0, cols, rows, dst);
}
#endif

}  // namespace

void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
#if defined(MOE_AVX512_KERNELS)
  if (cpu_has_avx512f()) return transpose_avx512(src, rows, cols, dst);
#endif
  transpose_plain(src, cols, 0, rows, 0, cols, rows, dst);
}

}  // namespace moe::kernels
