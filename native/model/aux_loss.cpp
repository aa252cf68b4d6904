#include "aux_loss.h"

#include "../ops/router_losses.h"

namespace moe::model {

at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t num_tokens) {
  return load_balancing_loss(counts, prob_sums, num_tokens, num_tokens);
}

at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t count_tokens,
                               int64_t prob_tokens) {
  return ops::load_balancing_loss(counts, prob_sums, count_tokens, prob_tokens);
}

}  // namespace moe::model

at::Tensor moe::model::router_z_loss(const at::Tensor& logits) {
  return ops::router_z_loss(logits);
}
