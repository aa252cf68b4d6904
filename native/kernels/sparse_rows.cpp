// The product keeps a block of output columns of one row in registers while it walks the row's entries,
// so each nonzero costs one read of a block of dense values and an FMA per vector: 64 columns in 8 AVX2
// (or SSE) accumulators, or, where the CPU has AVX-512, 256 columns in 16 of its 32 registers. The wide
// block reads each entry's dense kilobyte in one pass over the row, where 64-column blocks make four.
// The CSR fill has an AVX-512 path too.
#include "sparse_rows.h"

#include <algorithm>
#include <cstring>

#include "simd_clones.h"

#if defined(MOE_AVX512_KERNELS)
#include <immintrin.h>
#endif

namespace moe::kernels {

namespace {
// Bits of 8 floats without their signs are all zero: the block holds only +0 and -0 (the usual case in
// an MNIST row), which the fill skips with one test instead of eight.
MOE_ALWAYS_INLINE bool all_zero8(const float* p) {
  uint64_t w[4];
  std::memcpy(w, p, sizeof w);
  return ((w[0] | w[1] | w[2] | w[3]) & 0x7fffffff7fffffffULL) == 0;
}
}  // namespace

MOE_SIMD_CLONES
int64_t count_nonzeros(const float* x, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += x[i] != 0.0f;
  return count;
}

#if defined(MOE_AVX512_KERNELS)
namespace {
// 16 values at a time without a branch per value: the nonzero mask compresses the values and their
// column numbers to the front of a register, and masked stores write exactly the nonzeros (never past
// the row's share of col and val, which another thread may be filling). Not the store form of compress,
// which Zen 4 runs in microcode.
__attribute__((target("avx512f"))) void fill_rows_avx512(const float* x, int64_t r0, int64_t r1, int64_t K,
                                                           const int64_t* row_start, int32_t* col, float* val) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t m = r0; m < r1; ++m) {
    const float* row = x + m * K;
    int64_t p = row_start[m], k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m512 v = _mm512_loadu_ps(row + k);
      const __mmask16 nonzero = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ);  // -0.0 is zero, NaN is not
      if (nonzero == 0) continue;
      const int n = __builtin_popcount(nonzero);
      const auto first_n = static_cast<__mmask16>((1u << n) - 1u);
      const __m512i cols = _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(k)));
      _mm512_mask_storeu_ps(val + p, first_n, _mm512_maskz_compress_ps(nonzero, v));
      _mm512_mask_storeu_epi32(col + p, first_n, _mm512_maskz_compress_epi32(nonzero, cols));
      p += n;
    }
    for (; k < K; ++k) {
      if (row[k] != 0.0f) {
        col[p] = static_cast<int32_t>(k);
        val[p++] = row[k];
      }
    }
  }
}
}  // namespace
#endif

MOE_SIMD_CLONES
void csr_fill_rows(const float* x, int64_t r0, int64_t r1, int64_t K, const int64_t* row_start, int32_t* col,
                   float* val) {
#if defined(MOE_AVX512_KERNELS)
  if (cpu_has_avx512f()) {
    fill_rows_avx512(x, r0, r1, K, row_start, col, val);
    return;
  }
#endif
  for (int64_t m = r0; m < r1; ++m) {
    const float* row = x + m * K;
    int64_t p = row_start[m], k = 0;
    for (; k + 8 <= K; k += 8) {
      if (all_zero8(row + k)) continue;
      for (int64_t j = k; j < k + 8; ++j) {
        if (row[j] != 0.0f) {
          col[p] = static_cast<int32_t>(j);
          val[p++] = row[j];
        }
      }
    }
    for (; k < K; ++k) {
      if (row[k] != 0.0f) {
        col[p] = static_cast<int32_t>(k);
        val[p++] = row[k];
      }
    }
  }
}

void csr_transpose(const int64_t* row_start, const int32_t* col, const float* val, int64_t M, int64_t K,
                   int64_t* t_row_start, int32_t* t_col, float* t_val) {
  std::fill(t_row_start, t_row_start + K + 1, 0);
  const int64_t nnz = row_start[M];
  for (int64_t p = 0; p < nnz; ++p) t_row_start[col[p] + 1] += 1;
  for (int64_t k = 0; k < K; ++k) t_row_start[k + 1] += t_row_start[k];
  // Scatter in increasing row m: each transposed row lists its entries by ascending m. t_row_start[k]
  // serves as row k's next free slot and ends as its end; one shift restores the starts.
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t p = row_start[m]; p < row_start[m + 1]; ++p) {
      const int64_t slot = t_row_start[col[p]]++;
      t_col[slot] = static_cast<int32_t>(m);
      t_val[slot] = val[p];
    }
  }
  for (int64_t k = K; k > 0; --k) t_row_start[k] = t_row_start[k - 1];
  t_row_start[0] = 0;
}

namespace {

// Scalar columns [n0, n1) of row r: the tail of a row narrower than a block, and the portable path.
MOE_ALWAYS_INLINE void row_columns(const int32_t* col, const float* val, int64_t begin, int64_t end,
                                   const float* dense, const float* bias, int64_t N, int64_t n0, int64_t n1,
                                   float* out) {
  for (int64_t n = n0; n < n1; ++n) {
    float acc = bias ? bias[n] : 0.0f;
    for (int64_t p = begin; p < end; ++p) acc += val[p] * dense[static_cast<int64_t>(col[p]) * N + n];
    out[n] = acc;
  }
}

#if defined(__GNUC__) || defined(__clang__)
// 8 floats: one AVX register in the AVX2 clone, two SSE registers in the baseline one.
typedef float Float8 __attribute__((vector_size(32)));
constexpr int64_t kBlock = 64;  // columns kept in registers: 8 accumulators

MOE_ALWAYS_INLINE Float8 load8(const float* p) {
  Float8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
MOE_ALWAYS_INLINE void store8(float* p, Float8 v) { std::memcpy(p, &v, sizeof v); }

// Rows [r0, r1) over columns [n0, n0 + 256): 16 accumulators of 16 floats, only where AVX-512F is.
#if defined(MOE_AVX512_KERNELS)
typedef float Float16 __attribute__((vector_size(64)));
constexpr int64_t kWideBlock = 256;

__attribute__((target("avx512f"))) void rows_wide_block(const int64_t* row_start, const int32_t* col,
                                                          const float* val, int64_t r0, int64_t r1,
                                                          const float* dense, const float* bias, int64_t N,
                                                          int64_t n0, float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    Float16 a[16];
    for (int i = 0; i < 16; ++i) {
      if (bias) {
        std::memcpy(&a[i], bias + n0 + 16 * i, sizeof a[i]);
      } else {
        a[i] = Float16{};
      }
    }
    for (int64_t p = row_start[r]; p < row_start[r + 1]; ++p) {
      const float v = val[p];
      const float* d = dense + static_cast<int64_t>(col[p]) * N + n0;
      for (int i = 0; i < 16; ++i) {
        Float16 w;
        std::memcpy(&w, d + 16 * i, sizeof w);
        a[i] += v * w;
      }
    }
    for (int i = 0; i < 16; ++i) std::memcpy(out + r * N + n0 + 16 * i, &a[i], sizeof a[i]);
  }
}
#endif

MOE_ALWAYS_INLINE void row_block(const int32_t* col, const float* val, int64_t begin, int64_t end,
                                 const float* dense, const float* bias, int64_t N, int64_t n0, float* out) {
  Float8 a[8];
  for (int i = 0; i < 8; ++i) a[i] = bias ? load8(bias + n0 + 8 * i) : Float8{};
  for (int64_t p = begin; p < end; ++p) {
    const float v = val[p];
    const float* d = dense + static_cast<int64_t>(col[p]) * N + n0;
    for (int i = 0; i < 8; ++i) a[i] += v * load8(d + 8 * i);
  }
  for (int i = 0; i < 8; ++i) store8(out + n0 + 8 * i, a[i]);
}
#endif

}  // namespace

// Column blocks outside, rows inside: one block of the dense matrix (K x 64 or K x 256 floats, 200 KB or
// 800 KB for K = 784) stays in L2 while every row of the range reads from it.
MOE_SIMD_CLONES
void csr_times_dense(const int64_t* row_start, const int32_t* col, const float* val, int64_t r0, int64_t r1,
                     const float* dense, const float* bias, int64_t N, float* out) {
  int64_t n0 = 0;
#if defined(MOE_AVX512_KERNELS)
  if (cpu_has_avx512f()) {
    for (; n0 + kWideBlock <= N; n0 += kWideBlock) rows_wide_block(row_start, col, val, r0, r1, dense, bias, N, n0, out);
  }
#endif
#if defined(__GNUC__) || defined(__clang__)
  for (; n0 + kBlock <= N; n0 += kBlock) {
    for (int64_t r = r0; r < r1; ++r) {
      row_block(col, val, row_start[r], row_start[r + 1], dense, bias, N, n0, out + r * N);
    }
  }
#endif
  for (int64_t r = r0; r < r1; ++r) {
    row_columns(col, val, row_start[r], row_start[r + 1], dense, bias, N, n0, N, out + r * N);
  }
}

}  // namespace moe::kernels
