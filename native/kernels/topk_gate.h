// Fused top-k gate: softmax over E logits, top-k selection, the k weights renormalised to sum to 1,
// plus the per-expert assignment counts and probability sums that the load-balancing loss needs.
// Plain C++ on raw pointers (no torch): `_ref` is the spec, `_cpu` the path the op runs on CPU.
//
// Shapes (row-major, contiguous):
//   logits [T,E], probs [T,E], idx [T,k] int64, weights [T,k], counts [E] int64, prob_sums [E]
//   grad_weights [T,k], grad_prob_sums [E] -> grad_logits [T,E]
// Tie rule: among equal probabilities the lower expert index wins, and idx[t,:] lists the selected
// experts by decreasing probability (ties: increasing index). A zero-initialised gate ties everything,
// so this rule is what makes a seeded run reproducible across CPU and CUDA.
// Caller guarantees T >= 0, E >= 1, 1 <= k <= E.
#pragma once
#include <cstdint>

namespace moe::kernels {

template <typename scalar_t>
void topk_gate_forward_ref(const scalar_t* logits, int64_t T, int64_t E, int64_t k, scalar_t* probs,
                           int64_t* idx, scalar_t* weights, int64_t* counts, scalar_t* prob_sums);

template <typename scalar_t>
void topk_gate_forward_cpu(const scalar_t* logits, int64_t T, int64_t E, int64_t k, scalar_t* probs,
                           int64_t* idx, scalar_t* weights, int64_t* counts, scalar_t* prob_sums);

// Backward of (weights, prob_sums) with respect to logits. The weights are a softmax over the k selected
// logits, so non-selected logits receive gradient only through prob_sums.
template <typename scalar_t>
void topk_gate_backward_ref(const scalar_t* probs, const int64_t* idx, const scalar_t* weights,
                            const scalar_t* grad_weights, const scalar_t* grad_prob_sums, int64_t T,
                            int64_t E, int64_t k, scalar_t* grad_logits);

template <typename scalar_t>
void topk_gate_backward_cpu(const scalar_t* probs, const int64_t* idx, const scalar_t* weights,
                            const scalar_t* grad_weights, const scalar_t* grad_prob_sums, int64_t T,
                            int64_t E, int64_t k, scalar_t* grad_logits);

// CUDA launchers (topk_gate_cuda.cu): device pointers, enqueued on `stream` (a cudaStream_t; void* so
// that this header needs no CUDA include). Same outputs and tie rule as the reference.
template <typename scalar_t>
void topk_gate_forward_cuda(const scalar_t* logits, int64_t T, int64_t E, int64_t k, scalar_t* probs,
                            int64_t* idx, scalar_t* weights, int64_t* counts, scalar_t* prob_sums,
                            void* stream);
template <typename scalar_t>
void topk_gate_backward_cuda(const scalar_t* probs, const int64_t* idx, const scalar_t* weights,
                             const scalar_t* grad_weights, const scalar_t* grad_prob_sums, int64_t T,
                             int64_t E, int64_t k, scalar_t* grad_logits, void* stream);

}  // namespace moe::kernels
