// Dispatch: put the T*k routed copies of the tokens into expert-contiguous order, and back.
// Plain C++ on raw pointers (no torch). Assignment a = t*k + j is token t's j-th choice.
//
// Plan (counting sort: histogram + exclusive scan + stable scatter over expert ids):
//   expert_ids [A] int64 in [0,E) (A = T*k; the caller checks the range)
//   offsets [E+1]: expert e owns sorted rows [offsets[e], offsets[e+1])
//   sorted_to_assignment [A]: the assignment at each sorted row (stable: increasing a within an expert)
//   assignment_to_sorted [A]: its inverse
// Permute forward:  rows[s] = x[sorted_to_assignment[s] / k]          x [T,H] -> rows [A,H]
// Permute backward: grad_x[t] = sum_j grad_rows[assignment_to_sorted[t*k+j]]   (a gather, no atomics)
#pragma once
#include <cstdint>

namespace moe::kernels {

void dispatch_plan_ref(const int64_t* expert_ids, int64_t A, int64_t E, int64_t* offsets,
                       int64_t* sorted_to_assignment, int64_t* assignment_to_sorted);
void dispatch_plan_cpu(const int64_t* expert_ids, int64_t A, int64_t E, int64_t* offsets,
                       int64_t* sorted_to_assignment, int64_t* assignment_to_sorted);

template <typename scalar_t>
void permute_forward_ref(const scalar_t* x, const int64_t* sorted_to_assignment, int64_t T, int64_t k,
                         int64_t H, scalar_t* rows);
template <typename scalar_t>
void permute_backward_ref(const scalar_t* grad_rows, const int64_t* assignment_to_sorted, int64_t T,
                          int64_t k, int64_t H, scalar_t* grad_x);

}  // namespace moe::kernels
