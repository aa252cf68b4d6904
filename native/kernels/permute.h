// Dispatch: put the T*k routed copies of the tokens into expert-contiguous order, and back.
// Plain C++ on raw pointers (no torch). Assignment a = t*k + j is token t's j-th choice.
//
// Plan (counting sort: histogram + exclusive scan + stable scatter over expert ids):
//   expert_ids [A] int64 in [0,E) (A = T*k; the reference and CUDA plans trust the caller on the range)
//   offsets [E+1]: expert e owns sorted rows [offsets[e], offsets[e+1])
//   sorted_to_assignment [A]: the assignment at each sorted row (stable: increasing a within an expert)
//   assignment_to_sorted [A]: its inverse
// Capacity layout (the CUDA expert path, a padded batched GEMM): expert e owns rows [e*C, (e+1)*C) of
// R = E*C rows; its assignments fill them in increasing assignment order and the rest are padding
// (row_to_assignment = -1). C must be >= every expert's count: T when each token's k choices are distinct,
// which the gate guarantees. Every shape is then static, so no count ever has to reach the host.
// Permute forward:  rows[r] = x[row_to_assignment[r] / k], or 0 for padding      x [T,H] -> rows [R,H]
// Permute backward: grad_x[t] = sum_j grad_rows[assignment_to_row[t*k+j]]   (a gather, no atomics)
// (The packed layout is the case R = A, with sorted_to_assignment / assignment_to_sorted as the maps.)
#pragma once
#include <cstdint>

namespace moe::kernels {

void dispatch_plan_ref(const int64_t* expert_ids, int64_t A, int64_t E, int64_t* offsets,
                       int64_t* sorted_to_assignment, int64_t* assignment_to_sorted);
// The CPU plan checks the range itself, in its histogram pass: it returns the position of the first id
// outside [0, E) (and writes nothing else), or -1 when all are in range.
int64_t dispatch_plan_cpu(const int64_t* expert_ids, int64_t A, int64_t E, int64_t* offsets,
                          int64_t* sorted_to_assignment, int64_t* assignment_to_sorted);

void dispatch_plan_padded_ref(const int64_t* expert_ids, int64_t A, int64_t E, int64_t capacity, int64_t* counts,
                              int64_t* assignment_to_row, int64_t* row_to_assignment);

template <typename scalar_t>
void permute_forward_ref(const scalar_t* x, const int64_t* row_to_assignment, int64_t R, int64_t k, int64_t H,
                         scalar_t* rows);
template <typename scalar_t>
void permute_backward_ref(const scalar_t* grad_rows, const int64_t* assignment_to_row, int64_t T, int64_t k,
                          int64_t H, scalar_t* grad_x);

// CPU permute backward (permute_cpu.cpp): the same gather-sum, tokens [0, T) of the pointers given.
template <typename scalar_t>
void permute_backward_cpu(const scalar_t* grad_rows, const int64_t* assignment_to_row, int64_t T, int64_t k,
                          int64_t H, scalar_t* grad_x);

// CUDA launchers (permute_cuda.cu): device pointers, enqueued on `stream` (a cudaStream_t). The plan is a
// deterministic counting sort (chunk histograms, a per-expert scan over chunks, in-chunk stable ranks);
// `workspace` holds dispatch_plan_padded_cuda_workspace(A, E) int64 values.
int64_t dispatch_plan_padded_cuda_workspace(int64_t A, int64_t E);
void dispatch_plan_padded_cuda(const int64_t* expert_ids, int64_t A, int64_t E, int64_t capacity,
                               int64_t* counts, int64_t* assignment_to_row, int64_t* row_to_assignment,
                               int64_t* workspace, void* stream);
template <typename scalar_t>
void permute_forward_cuda(const scalar_t* x, const int64_t* row_to_assignment, int64_t R, int64_t k, int64_t H,
                          scalar_t* rows, void* stream);
template <typename scalar_t>
void permute_backward_cuda(const scalar_t* grad_rows, const int64_t* assignment_to_row, int64_t T, int64_t k,
                           int64_t H, scalar_t* grad_x, void* stream);

}  // namespace moe::kernels
