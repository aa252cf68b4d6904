// Router z-loss (ST-MoE): z = (1/T) sum_t lse_t^2 with lse_t = logsumexp(logits[t, :]), and its gradient
// dz/dlogits[t, e] = (2/T) lse_t softmax(logits[t, :])_e. One pass per row in each direction, where ATen
// takes some ten ops and as many autograd nodes. Plain C++ on raw pointers (no torch); logits [T,E]
// contiguous, T >= 1, E >= 1.
#pragma once
#include <cstdint>

namespace moe::kernels {

// Writes lse [T] (kept for the backward) and returns z.
template <typename scalar_t>
double router_z_loss_forward_cpu(const scalar_t* logits, int64_t T, int64_t E, scalar_t* lse);

// grad_logits [T,E] = grad_z * dz/dlogits.
template <typename scalar_t>
void router_z_loss_backward_cpu(const scalar_t* logits, const scalar_t* lse, int64_t T, int64_t E, double grad_z,
                                scalar_t* grad_logits);

}  // namespace moe::kernels
