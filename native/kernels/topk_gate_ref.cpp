// The specification of the top-k gate: naive loops, double accumulators, a full stable sort per token.
// Never optimised; the tests compare every faster path against it.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "topk_gate.h"

namespace moe::kernels {

template <typename scalar_t>
void topk_gate_forward_ref(const scalar_t* logits, int64_t T, int64_t E, int64_t k, scalar_t* probs,
                           int64_t* idx, scalar_t* weights, int64_t* counts, scalar_t* prob_sums) {
  std::vector<double> p(E), sums(E, 0.0);
  std::vector<int64_t> order(E);
  for (int64_t e = 0; e < E; ++e) counts[e] = 0;
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* z = logits + t * E;
    double zmax = z[0];
    for (int64_t e = 1; e < E; ++e) zmax = std::max(zmax, static_cast<double>(z[e]));
    double denom = 0.0;
    for (int64_t e = 0; e < E; ++e) denom += std::exp(static_cast<double>(z[e]) - zmax);
    for (int64_t e = 0; e < E; ++e) {
      p[e] = std::exp(static_cast<double>(z[e]) - zmax) / denom;
      probs[t * E + e] = static_cast<scalar_t>(p[e]);
      sums[e] += p[e];
    }
    // Rank on the stored (scalar_t) probabilities so that the tie rule sees the same values as the op.
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return probs[t * E + a] > probs[t * E + b];
    });
    double selected = 0.0;
    for (int64_t j = 0; j < k; ++j) selected += p[order[j]];
    for (int64_t j = 0; j < k; ++j) {
      idx[t * k + j] = order[j];
      weights[t * k + j] = static_cast<scalar_t>(p[order[j]] / selected);
      counts[order[j]] += 1;
    }
  }
  for (int64_t e = 0; e < E; ++e) prob_sums[e] = static_cast<scalar_t>(sums[e]);
}

template <typename scalar_t>
void topk_gate_backward_ref(const scalar_t* probs, const int64_t* idx, const scalar_t* weights,
                            const scalar_t* grad_weights, const scalar_t* grad_prob_sums, int64_t T,
                            int64_t E, int64_t k, scalar_t* grad_logits) {
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* p = probs + t * E;
    // Softmax backward of the prob_sums path: dz_e = p_e (g_e - sum_j p_j g_j).
    double pg = 0.0;
    for (int64_t e = 0; e < E; ++e) pg += static_cast<double>(p[e]) * grad_prob_sums[e];
    std::vector<double> g(E);
    for (int64_t e = 0; e < E; ++e) g[e] = p[e] * (grad_prob_sums[e] - pg);
    // Softmax-over-the-selected backward of the weights path: dz_{s_m} = w_m (g_m - sum_j w_j g_j).
    double wg = 0.0;
    for (int64_t j = 0; j < k; ++j) wg += static_cast<double>(weights[t * k + j]) * grad_weights[t * k + j];
    for (int64_t j = 0; j < k; ++j) {
      g[idx[t * k + j]] += weights[t * k + j] * (grad_weights[t * k + j] - wg);
    }
    for (int64_t e = 0; e < E; ++e) grad_logits[t * E + e] = static_cast<scalar_t>(g[e]);
  }
}

template void topk_gate_forward_ref<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t*,
                                           float*, int64_t*, float*);
template void topk_gate_forward_ref<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t*,
                                            double*, int64_t*, double*);
template void topk_gate_backward_ref<float>(const float*, const int64_t*, const float*, const float*,
                                            const float*, int64_t, int64_t, int64_t, float*);
template void topk_gate_backward_ref<double>(const double*, const int64_t*, const double*, const double*,
                                             const double*, int64_t, int64_t, int64_t, double*);

}  // namespace moe::kernels
