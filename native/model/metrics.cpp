#include "metrics.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "routing.h"
#include "trainer.h"

namespace moe::model {
namespace {

template <typename Fn>
void for_each_batch(int64_t n, int64_t batch_size, Fn&& fn) {
  for (int64_t begin = 0; begin < n; begin += batch_size) fn(begin, std::min(batch_size, n - begin));
}

std::vector<std::vector<int64_t>> to_matrix(const at::Tensor& t) {  // [R,C] int64 -> nested vectors
  const at::Tensor c = t.contiguous();
  std::vector<std::vector<int64_t>> m(c.size(0), std::vector<int64_t>(c.size(1)));
  const int64_t* p = c.data_ptr<int64_t>();
  for (int64_t r = 0; r < c.size(0); ++r)
    for (int64_t k = 0; k < c.size(1); ++k) m[r][k] = p[r * c.size(1) + k];
  return m;
}

// Each input's assignments, grouped by input and, within an input, by decreasing weight (ties in the
// record's order), appended batch after batch. Host loops over a few values per input: the ATen sorts,
// gathers and concatenations they replace cost more than a one-input forward pass.
struct RoutingLists {
  std::vector<int32_t> experts;
  std::vector<float> weights;
  std::vector<int32_t> offsets{0};  // input i's assignments: [offsets[i], offsets[i+1])

  // The assignments of `size` more inputs (token: the input's index among them): a counting sort by
  // input, then an insertion sort of each input's few assignments.
  void append(const at::Tensor& token_in, const at::Tensor& expert_in, const at::Tensor& weight_in, int64_t size) {
    const at::Tensor token = token_in.cpu().contiguous(), expert = expert_in.cpu().contiguous();
    const at::Tensor weight = weight_in.to(at::kCPU, at::kFloat).contiguous();
    const int64_t A = token.numel();
    const int64_t* t = token.data_ptr<int64_t>();
    const int64_t* e = expert.data_ptr<int64_t>();
    const float* w = weight.data_ptr<float>();
    const size_t base = experts.size();
    const size_t first = offsets.size() - 1;  // this batch's first input
    offsets.resize(first + static_cast<size_t>(size) + 1, 0);
    std::vector<int32_t> next(static_cast<size_t>(size) + 1, 0);  // counts, then each input's next slot
    for (int64_t a = 0; a < A; ++a) {
      TORCH_CHECK(t[a] >= 0 && t[a] < size, "routing record names input ", t[a], " of a batch of ", size);
      ++next[static_cast<size_t>(t[a]) + 1];
    }
    for (int64_t i = 0; i < size; ++i) next[i + 1] += next[i];
    for (int64_t i = 0; i <= size; ++i) offsets[first + i] = static_cast<int32_t>(base) + next[i];
    experts.resize(base + static_cast<size_t>(A));
    weights.resize(base + static_cast<size_t>(A));
    for (int64_t a = 0; a < A; ++a) {
      const size_t slot = base + static_cast<size_t>(next[static_cast<size_t>(t[a])]++);
      experts[slot] = static_cast<int32_t>(e[a]);
      weights[slot] = w[a];
    }
    for (int64_t i = 0; i < size; ++i) sort_by_weight(offsets[first + i], offsets[first + i + 1]);
  }

  // Entries [lo, hi) by decreasing weight, ties kept in order: an insertion sort (an input has a few).
  void sort_by_weight(int32_t lo, int32_t hi) {
    for (int32_t j = lo + 1; j < hi; ++j) {
      const float w = weights[j];
      const int32_t e = experts[j];
      int32_t k = j;
      for (; k > lo && weights[k - 1] < w; --k) {
        weights[k] = weights[k - 1];
        experts[k] = experts[k - 1];
      }
      weights[k] = w;
      experts[k] = e;
    }
  }
};

}  // namespace

EvalResult evaluate(Classifier& model, const at::Tensor& inputs, const at::Tensor& labels, int64_t batch_size) {
  check_dataset(model, inputs, labels);
  TORCH_CHECK_VALUE(labels.defined(), "evaluation needs labels");
  TORCH_CHECK_VALUE(batch_size >= 1, "batch size must be >= 1, got ", batch_size);
  c10::InferenceMode inference;  // no autograd bookkeeping at all (cheaper than NoGradGuard)
  const int64_t n = inputs.size(0), C = model.config().num_classes;
  const at::Device device = model.device();
  // Accumulated where the model runs and read once at the end (no per-batch sync on a GPU).
  at::Tensor confusion = at::zeros({C * C}, at::TensorOptions(at::kLong).device(device));
  at::Tensor ce_sum = at::zeros({}, at::TensorOptions(at::kDouble).device(device));
  const Classifier::InferenceFn forward = model.inference();
  for_each_batch(n, batch_size, [&](int64_t begin, int64_t size) {
    const at::Tensor y = labels.narrow(0, begin, size).to(device);
    const at::Tensor logits = forward(inputs.narrow(0, begin, size).to(device)).logits;
    ce_sum += at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).to(at::kDouble);
    confusion += at::bincount(y * C + logits.argmax(1), {}, C * C);
  });
  EvalResult r;
  r.confusion = to_matrix(confusion.view({C, C}).cpu());
  int64_t correct = 0;
  for (int64_t c = 0; c < C; ++c) {
    int64_t row = 0;
    for (int64_t p = 0; p < C; ++p) row += r.confusion[c][p];
    correct += r.confusion[c][c];
    r.per_class_accuracy.push_back(row ? static_cast<double>(r.confusion[c][c]) / row
                                       : std::numeric_limits<double>::quiet_NaN());
  }
  r.accuracy = static_cast<double>(correct) / n;
  r.loss = ce_sum.item<double>() / n;
  return r;
}

RoutingStats routing_stats(Classifier& model, const at::Tensor& inputs, const at::Tensor& labels,
                           int64_t batch_size) {
  check_dataset(model, inputs, labels);
  const auto& cfg = model.config();
  TORCH_CHECK_VALUE(cfg.kind == ModelKind::kMoE, "routing statistics need an MoE model");
  TORCH_CHECK_VALUE(labels.defined(), "routing statistics need labels (per-class routing)");
  c10::InferenceMode inference;  // no autograd bookkeeping at all (cheaper than NoGradGuard)
  const int64_t n = inputs.size(0), C = cfg.num_classes, E = cfg.num_experts;
  const at::Device device = model.device();
  const auto longs = at::TensorOptions(at::kLong).device(device);
  at::Tensor counts = at::zeros({C * E}, longs);
  at::Tensor prob_sums = at::zeros({E}, at::TensorOptions(at::kDouble).device(device));
  at::Tensor co_activation = at::zeros({E, E}, at::TensorOptions(at::kDouble).device(device));
  at::Tensor dropped = at::zeros({}, longs);
  const Classifier::InferenceFn forward = model.inference();
  for_each_batch(n, batch_size, [&](int64_t begin, int64_t size) {
    const at::Tensor y = labels.narrow(0, begin, size).to(device);
    const ForwardResult out = forward(inputs.narrow(0, begin, size).to(device));
    const RoutingRecord& rr = out.routing;
    // flat index class*E + expert for every assignment an expert ran
    counts += at::bincount(y.index_select(0, rr.token) * E + rr.expert, {}, C * E);
    prob_sums += rr.prob_sums.to(at::kDouble);
    // used[t][e] = 1 when input t ran on expert e; usedᵀ·used counts the inputs each pair shares
    const at::Tensor used = at::zeros({size, E}, at::TensorOptions(at::kDouble).device(device))
                                .index_put_({rr.token, rr.expert}, at::ones({}, at::TensorOptions(at::kDouble).device(device)));
    co_activation += at::mm(used.t(), used);
    dropped += rr.dropped;
  });
  RoutingStats r;
  counts = counts.cpu();
  prob_sums = prob_sums.cpu();
  const at::Tensor co = (co_activation / static_cast<double>(n)).cpu();
  for (int64_t i = 0; i < E; ++i) {
    r.co_activation.emplace_back(co[i].data_ptr<double>(), co[i].data_ptr<double>() + E);
  }
  r.dropped_fraction = dropped.item<double>() / static_cast<double>(n * drop_units_per_input(cfg));
  r.per_class_counts = to_matrix(counts.view({C, E}));
  std::vector<double> load(E, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    int64_t row = 0;
    for (int64_t e = 0; e < E; ++e) row += r.per_class_counts[c][e];
    std::vector<double> shares(E, 0.0);
    for (int64_t e = 0; e < E; ++e) {
      shares[e] = row ? static_cast<double>(r.per_class_counts[c][e]) / row : 0.0;
      load[e] += r.per_class_counts[c][e];
    }
    // Primary and secondary: the two largest shares, ties to the lower expert index.
    int64_t first = 0;
    for (int64_t e = 1; e < E; ++e) if (shares[e] > shares[first]) first = e;
    int64_t second = first == 0 ? (E > 1 ? 1 : 0) : 0;
    for (int64_t e = 0; e < E; ++e) if (e != first && shares[e] > shares[second]) second = e;
    r.primary.push_back({first, shares[first]});
    r.secondary.push_back({second, E > 1 ? shares[second] : 0.0});
    r.per_class.push_back(std::move(shares));
  }
  double total = 0;
  for (double v : load) total += v;
  double mean = 1.0 / E, var = 0;
  const double* ps = prob_sums.data_ptr<double>();
  for (int64_t e = 0; e < E; ++e) {
    load[e] = total > 0 ? load[e] / total : 0.0;
    if (load[e] > 0) r.entropy -= load[e] * std::log(load[e]);
    var += (load[e] - mean) * (load[e] - mean);
    r.importance.push_back(ps[e] / n);
  }
  r.expert_load = load;
  r.load_cv = std::sqrt(var / E) / mean;
  return r;
}

Prediction predict(Classifier& model, const at::Tensor& inputs, int64_t batch_size, bool with_routing) {
  check_dataset(model, inputs, at::Tensor());
  TORCH_CHECK_VALUE(batch_size >= 1, "batch size must be >= 1, got ", batch_size);
  TORCH_CHECK_VALUE(!with_routing || model.config().kind == ModelKind::kMoE, "routing needs an MoE model");
  c10::InferenceMode inference;  // no autograd bookkeeping at all (cheaper than NoGradGuard)
  const int64_t n = inputs.size(0);
  // Filled where the model runs and copied to the host once (no device-to-host sync per batch).
  const auto on_model = at::TensorOptions(at::kFloat).device(model.device());
  at::Tensor probs = at::empty({n, model.config().num_classes}, on_model);
  RoutingLists routing;
  // On a GPU the batches' records stay there and come to the host once, at the end (no sync per batch).
  const bool on_host = model.device().is_cpu();
  std::vector<at::Tensor> tokens, experts, weights;
  const Classifier::InferenceFn forward = model.inference();
  for_each_batch(n, batch_size, [&](int64_t begin, int64_t size) {
    const at::Tensor x = inputs.narrow(0, begin, size).to(model.device());
    const ForwardResult out = forward(x);
    at::Tensor batch_probs = probs.narrow(0, begin, size);
    at::softmax_out(batch_probs, out.logits, 1);
    if (!with_routing) return;
    const RoutingRecord& r = out.routing;
    if (on_host) {
      routing.append(r.token, r.expert, r.weight, size);
    } else {
      tokens.push_back(r.token + begin);
      experts.push_back(r.expert);
      weights.push_back(r.weight);
    }
  });
  if (with_routing && !on_host) routing.append(at::cat(tokens), at::cat(experts), at::cat(weights), n);
  Prediction p{probs.cpu(), {}, {}, {}};
  if (with_routing) {
    p.experts = at::tensor(routing.experts, at::kInt);
    p.weights = at::tensor(routing.weights, at::kFloat);
    p.routing_offsets = at::tensor(routing.offsets, at::kInt);
  }
  return p;
}

}  // namespace moe::model
