// A 16x16 float block transposed in registers: r[i] holds row i on entry and column i on exit. Three rounds
// of shuffles (pairs of rows, then 4x4 within each 128-bit lane, then the lanes), 64 instructions. Shared
// by kernels::transpose and the FFN kernel that takes rows as lanes (ffn_16rows.cpp).
#pragma once
#include "simd_clones.h"

#if defined(MOE_AVX512_KERNELS)
#include <immintrin.h>

namespace moe::kernels {

__attribute__((target("avx512f"), always_inline)) inline void transpose16_in_registers(__m512* r) {
  __m512 t[16];
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
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace moe::kernels
#endif
