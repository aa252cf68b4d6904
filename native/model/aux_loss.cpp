#include "aux_loss.h"

namespace moe::model {

at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t num_tokens) {
  return load_balancing_loss(counts, prob_sums, num_tokens, num_tokens);
}

at::Tensor load_balancing_loss(const at::Tensor& counts, const at::Tensor& prob_sums, int64_t count_tokens,
                               int64_t prob_tokens) {
  const int64_t E = prob_sums.size(0);
  if (count_tokens == 0 || prob_tokens == 0) return at::zeros({}, prob_sums.options());
  const at::Tensor f = counts.to(prob_sums.scalar_type()) / static_cast<double>(count_tokens);
  return at::dot(f, prob_sums) * (static_cast<double>(E) / static_cast<double>(prob_tokens));
}

}  // namespace moe::model

at::Tensor moe::model::router_z_loss(const at::Tensor& logits) {
  if (logits.size(0) == 0) return at::zeros({}, logits.options());
  return at::logsumexp(logits, 1).pow(2).mean();
}
