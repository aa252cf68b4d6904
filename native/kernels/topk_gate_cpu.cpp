// CPU path of the top-k gate: one pass per token in the input precision, top-k by insertion into a
// k-long list (k is small), no allocation per token. Same tie rule as the reference.
#include <cmath>

#include "topk_gate.h"

namespace moe::kernels {

template <typename scalar_t>
void topk_gate_forward_cpu(const scalar_t* logits, int64_t T, int64_t E, int64_t k, scalar_t* probs,
                           int64_t* idx, scalar_t* weights, int64_t* counts, scalar_t* prob_sums) {
  for (int64_t e = 0; e < E; ++e) {
    counts[e] = 0;
    prob_sums[e] = 0;
  }
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* z = logits + t * E;
    scalar_t* p = probs + t * E;
    int64_t* sel = idx + t * k;
    scalar_t* w = weights + t * k;
    scalar_t zmax = z[0];
    for (int64_t e = 1; e < E; ++e) zmax = z[e] > zmax ? z[e] : zmax;
    scalar_t denom = 0;
    for (int64_t e = 0; e < E; ++e) {
      p[e] = std::exp(z[e] - zmax);
      denom += p[e];
    }
    const scalar_t inv = scalar_t(1) / denom;
    int64_t filled = 0;
    for (int64_t e = 0; e < E; ++e) {
      p[e] *= inv;
      prob_sums[e] += p[e];
      // Insert e into the sorted list; a strict '>' keeps earlier (lower) indices ahead on ties.
      int64_t pos = filled < k ? filled : k;
      while (pos > 0 && p[e] > p[sel[pos - 1]]) --pos;
      if (pos >= k) continue;
      for (int64_t j = (filled < k ? filled : k - 1); j > pos; --j) sel[j] = sel[j - 1];
      sel[pos] = e;
      if (filled < k) ++filled;
    }
    scalar_t selected = 0;
    for (int64_t j = 0; j < k; ++j) selected += p[sel[j]];
    for (int64_t j = 0; j < k; ++j) {
      w[j] = p[sel[j]] / selected;
      counts[sel[j]] += 1;
    }
  }
}

template <typename scalar_t>
void topk_gate_backward_cpu(const scalar_t* probs, const int64_t* idx, const scalar_t* weights,
                            const scalar_t* grad_weights, const scalar_t* grad_prob_sums, int64_t T,
                            int64_t E, int64_t k, scalar_t* grad_logits) {
  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* p = probs + t * E;
    const scalar_t* w = weights + t * k;
    const scalar_t* gw = grad_weights + t * k;
    scalar_t* g = grad_logits + t * E;
    scalar_t pg = 0;
    for (int64_t e = 0; e < E; ++e) pg += p[e] * grad_prob_sums[e];
    for (int64_t e = 0; e < E; ++e) g[e] = p[e] * (grad_prob_sums[e] - pg);
    scalar_t wg = 0;
    for (int64_t j = 0; j < k; ++j) wg += w[j] * gw[j];
    for (int64_t j = 0; j < k; ++j) g[idx[t * k + j]] += w[j] * (gw[j] - wg);
  }
}

template void topk_gate_forward_cpu<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t*,
                                           float*, int64_t*, float*);
template void topk_gate_forward_cpu<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t*,
                                            double*, int64_t*, double*);
template void topk_gate_backward_cpu<float>(const float*, const int64_t*, const float*, const float*,
                                            const float*, int64_t, int64_t, int64_t, float*);
template void topk_gate_backward_cpu<double>(const double*, const int64_t*, const double*, const double*,
                                             const double*, int64_t, int64_t, int64_t, double*);

}  // namespace moe::kernels
