#include "trainer.h"

#include <ATen/Parallel.h>
#include <c10/util/ScopeExit.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cmath>
#include <mutex>

#include "../kernels/finite.h"

namespace moe::model {

namespace {

// kernels::first_non_finite with the threads splitting the values: a pass at memory speed over the whole
// dataset (31 MB for the MNIST test set); the lowest bad index any thread found.
int64_t first_non_finite_threaded(const float* data, int64_t n) {
  std::mutex mutex;
  int64_t first = -1;
  at::parallel_for(0, n, int64_t{1} << 18, [&](int64_t begin, int64_t end) {
    const int64_t i = kernels::first_non_finite(data + begin, end - begin);
    if (i < 0) return;
    std::lock_guard<std::mutex> lock(mutex);
    if (first < 0 || begin + i < first) first = begin + i;
  });
  return first;
}

}  // namespace

void check_dataset(const Classifier& model, const at::Tensor& inputs, const at::Tensor& labels) {
  const auto& c = model.config();
  TORCH_CHECK_TYPE(inputs.scalar_type() == at::kFloat, "inputs must be float32, got ", inputs.scalar_type());
  TORCH_CHECK_VALUE(inputs.dim() == 2 && inputs.size(1) == c.input_size, "inputs must have shape [n, ",
                    c.input_size, "], got ", inputs.sizes());
  TORCH_CHECK_VALUE(inputs.size(0) >= 1, "the dataset must hold at least one sample");
  TORCH_CHECK_VALUE(inputs.device().is_cpu(), "inputs must be a CPU tensor (the model moves batches itself)");
  // Checked here, on the compute thread, rather than by a scan on the JS thread (60k MNIST images: 47M values).
  const at::Tensor dense = inputs.contiguous();
  const int64_t bad = first_non_finite_threaded(dense.data_ptr<float>(), dense.numel());
  if (bad >= 0) {
    const float v = dense.data_ptr<float>()[bad];
    TORCH_CHECK_VALUE(false, "Expected a finite number (no NaN or Infinity) for inputs[", bad, "] but received ",
                      std::isnan(v) ? "NaN" : (v > 0 ? "Infinity" : "-Infinity"));
  }
  if (!labels.defined()) return;
  TORCH_CHECK_TYPE(labels.scalar_type() == at::kLong, "labels must be int64, got ", labels.scalar_type());
  TORCH_CHECK_VALUE(labels.dim() == 1 && labels.size(0) == inputs.size(0), "labels must have shape [",
                    inputs.size(0), "], got ", labels.sizes());
  const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
  TORCH_CHECK_INDEX(lo >= 0 && hi < c.num_classes, "labels must be in [0, numClasses=", c.num_classes,
                    "), got range [", lo, ", ", hi, "]");
}

LossWeights loss_weights(const Classifier& model) {
  const ModelConfig& c = model.config();
  if (c.kind != ModelKind::kMoE) return {};
  return {c.aux_loss_weight, c.z_loss_weight};
}

BatchLoss batch_loss(const ForwardResult& out, const at::Tensor& labels, const LossWeights& weights) {
  BatchLoss loss;
  loss.terms.emplace_back(at::cross_entropy_loss(out.logits, labels), 1.0);
  if (out.aux_loss.defined() && weights.aux != 0) loss.terms.emplace_back(out.aux_loss, weights.aux);
  if (out.z_loss.defined() && weights.z != 0) loss.terms.emplace_back(out.z_loss, weights.z);
  return loss;
}

void BatchLoss::backward(double scale) const {
  if (terms.size() == 1 && scale == 1.0) return terms.front().first.backward();
  std::vector<at::Tensor> roots, seeds;
  for (const auto& [term, weight] : terms) {
    roots.push_back(term);
    seeds.push_back(at::full({}, weight * scale, term.options()));
  }
  torch::autograd::backward(roots, seeds);
}

EpochMetrics epoch_metrics(int64_t epoch, const EpochSums& sums, int64_t seen, int64_t drop_units,
                           const LossWeights& weights, std::chrono::steady_clock::time_point started) {
  EpochMetrics m;
  m.epoch = epoch;
  m.classification_loss = sums.cross_entropy / seen;
  m.aux_loss = sums.aux / seen;
  m.z_loss = sums.z / seen;
  m.loss = m.classification_loss + weights.aux * m.aux_loss + weights.z * m.z_loss;
  m.accuracy = sums.correct / seen;
  m.dropped_fraction = sums.dropped / static_cast<double>(seen * drop_units);
  double total_load = 0;
  for (double v : sums.load) total_load += v;
  for (double v : sums.load) m.expert_load.push_back(total_load > 0 ? v / total_load : 0.0);
  m.samples = seen;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return m;
}

TrainResult train(Classifier& model, TrainerState& state, const at::Tensor& inputs, const at::Tensor& labels,
                  const TrainConfig& config, const EpochCallback& on_epoch, const std::atomic<bool>& stop,
                  const std::function<void()>& between_batches) {
  validate(config);
  check_dataset(model, inputs, labels);
  TORCH_CHECK_VALUE(labels.defined(), "training needs labels");
  ++state.train_calls;
  // The loop's Adam writes the parameters through raw pointers: inference's prepared weights are stale
  // from here on, and again after the last step, or a throw (the binding refuses inference while the
  // model trains; the second call covers any made from C++ in between).
  model.weights_changed();
  const auto changed_again = c10::make_scope_exit([&model] { model.weights_changed(); });
  return run_train_loop(model, state.loop, inputs, labels, config, on_epoch, stop, between_batches);
}

}  // namespace moe::model
