// 16x16 blocks: three rounds of in-register shuffles (pairs of rows, then 4x4 within each 128-bit lane,
// then the lanes), one load and one store per row of the block.
#include "transpose.h"

#include "simd_clones.h"

#if defined(MOE_AVX512_KERNELS)
#include <immintrin.h>
#endif

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
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ls);
  // Per 128-bit lane L: t[2p] = (r[2p][4L], r[2p+1][4L], r[2p][4L+1], r[2p+1][4L+1]), t[2p+1] the next two.
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // r[4g+c], lane L: rows 4g..4g+3 at column 4L+c.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // Output row 4L+c gathers lane L of r[c], r[4+c], r[8+c], r[12+c].
  for (int c = 0; c < 4; ++c) {
    const __m512 x = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44), y = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xEE);
    const __m512 z = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
    const __m512 w = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xEE);
    t[c] = _mm512_shuffle_f32x4(x, z, 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(x, z, 0xDD);
    t[8 + c] = _mm512_shuffle_f32x4(y, w, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(y, w, 0xDD);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ld, t[i]);
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
