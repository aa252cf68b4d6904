#include "trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>

#include <chrono>
#include <cmath>

namespace moe::model {

void check_dataset(const Classifier& model, const at::Tensor& inputs, const at::Tensor& labels) {
  const auto& c = model.config();
  TORCH_CHECK_TYPE(inputs.scalar_type() == at::kFloat, "inputs must be float32, got ", inputs.scalar_type());
  TORCH_CHECK_VALUE(inputs.dim() == 2 && inputs.size(1) == c.input_size, "inputs must have shape [n, ",
                    c.input_size, "], got ", inputs.sizes());
  TORCH_CHECK_VALUE(inputs.size(0) >= 1, "the dataset must hold at least one sample");
  // Checked here, on the worker thread, rather than by a scan on the JS thread (60k MNIST images: 47M values).
  if (!at::isfinite(inputs).all().item<bool>()) {
    const at::Tensor flat = inputs.reshape({-1});
    const int64_t at = at::logical_not(at::isfinite(flat)).nonzero().min().item<int64_t>();
    const float v = flat[at].item<float>();
    TORCH_CHECK_VALUE(false, "Expected a finite number (no NaN or Infinity) for inputs[", at, "] but received ",
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

double aux_loss_weight(const Classifier& model) {
  return model.config().kind == ModelKind::kMoE ? model.config().aux_loss_weight : 0.0;
}

BatchLoss batch_loss(const ForwardResult& out, const at::Tensor& labels, double aux_weight) {
  at::Tensor ce = at::cross_entropy_loss(out.logits, labels);
  return {out.aux_loss.defined() ? ce + aux_weight * out.aux_loss : ce, ce};
}

EpochMetrics epoch_metrics(int64_t epoch, double ce_sum, double aux_sum, double correct, int64_t seen,
                           double aux_weight, std::chrono::steady_clock::time_point started) {
  EpochMetrics m;
  m.epoch = epoch;
  m.classification_loss = ce_sum / seen;
  m.aux_loss = aux_sum / seen;
  m.loss = m.classification_loss + aux_weight * m.aux_loss;
  m.accuracy = correct / seen;
  m.samples = seen;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return m;
}

TrainResult train(Classifier& model, TrainerState& state, const at::Tensor& inputs, const at::Tensor& labels,
                  const TrainConfig& config, const EpochCallback& on_epoch, const std::atomic<bool>& stop) {
  validate(config);
  check_dataset(model, inputs, labels);
  TORCH_CHECK_VALUE(labels.defined(), "training needs labels");
  ++state.train_calls;
  if (model.device().is_cuda()) return train_on_device(model, state.device, inputs, labels, config, on_epoch, stop);
  if (!state.optimizer) {
    state.optimizer = std::make_unique<torch::optim::Adam>(model.parameters(),
                                                           torch::optim::AdamOptions(config.learning_rate));
  }
  for (auto& group : state.optimizer->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(config.learning_rate);
  }
  // Each call shuffles with its own seeded stream: reproducible, and never the process-global generator.
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(config.shuffle_seed);

  const double aux_weight = aux_loss_weight(model);
  const int64_t n = inputs.size(0);
  model.train();
  TrainResult result;
  for (int64_t epoch = 1; epoch <= config.epochs && !result.stopped; ++epoch) {
    const auto started = std::chrono::steady_clock::now();
    const at::Tensor order = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong));
    double ce_sum = 0, aux_sum = 0;
    int64_t correct = 0, seen = 0;
    for (int64_t begin = 0; begin < n; begin += config.batch_size) {
      if (stop.load(std::memory_order_relaxed)) {
        result.stopped = true;
        break;
      }
      const int64_t size = std::min(config.batch_size, n - begin);
      const at::Tensor batch_idx = order.narrow(0, begin, size);
      const at::Tensor x = inputs.index_select(0, batch_idx);
      const at::Tensor y = labels.index_select(0, batch_idx);
      ForwardResult out = model.forward(x);
      const BatchLoss loss = batch_loss(out, y, aux_weight);
      state.optimizer->zero_grad();
      loss.total.backward();
      state.optimizer->step();
      // Metrics from values already computed for the step: no extra forward pass.
      ce_sum += loss.cross_entropy.item<double>() * size;
      if (out.aux_loss.defined()) aux_sum += out.aux_loss.item<double>() * size;
      correct += out.logits.argmax(1).eq(y).sum().item<int64_t>();
      seen += size;
    }
    if (seen == 0) break;
    const EpochMetrics m = epoch_metrics(epoch, ce_sum, aux_sum, static_cast<double>(correct), seen, aux_weight,
                                         started);
    result.epochs.push_back(m);
    if (on_epoch) on_epoch(m);
  }
  model.eval();
  return result;
}

}  // namespace moe::model
