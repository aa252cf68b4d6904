// Products of a sparse matrix in compressed rows (CSR) with a dense row-major matrix: the first layer
// over inputs that are mostly zeros (MNIST pixels are ~81% zero) touches only the nonzero inputs.
// Plain C++ on raw pointers (no torch).
//   CSR: row_start [R+1] (row r owns entries [row_start[r], row_start[r+1])), col [nnz], val [nnz]
//   csr_times_dense: out[r, :] = bias + sum_{p in row r} val[p] * dense[col[p], :]      (out [R,N], dense [*,N])
// The linear layer uses it twice: forward y = x·Wᵀ + b with the CSR of x and dense = Wᵀ [In,N]; weight
// gradient (dW)ᵀ = xᵀ·dy with the CSR of xᵀ (csr_transpose) and dense = dy [M,N].
#pragma once
#include <cstdint>

namespace moe::kernels {

// Nonzeros of x [M,K] (row-major) into CSR, in two passes that threads can split by rows: count each
// row's nonzeros (count_nonzeros over the row), prefix-sum the counts into row_start, then fill rows
// [r0, r1) of col and val from their row_start offsets. -0.0 counts as zero.
int64_t count_nonzeros(const float* x, int64_t n);
void csr_fill_rows(const float* x, int64_t r0, int64_t r1, int64_t K, const int64_t* row_start, int32_t* col,
                   float* val);

// CSR of the transpose (K rows): a counting sort of the entries by column; order within a row ascending.
void csr_transpose(const int64_t* row_start, const int32_t* col, const float* val, int64_t M, int64_t K,
                   int64_t* t_row_start, int32_t* t_col, float* t_val);

// Rows [r0, r1) of out; bias may be null (zero). out rows have stride N.
void csr_times_dense(const int64_t* row_start, const int32_t* col, const float* val, int64_t r0, int64_t r1,
                     const float* dense, const float* bias, int64_t N, float* out);

}  // namespace moe::kernels
