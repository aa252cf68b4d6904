// The training loop in C++: shuffle, batches, forward, loss (cross-entropy + w * aux), backward, Adam,
// per-epoch metrics. Called once per JS `train` call; reports each epoch through a callback and checks
// a stop flag between batches so an abort leaves a consistent model.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "classifier.h"
#include "config.h"
#include "epoch_sums.h"
#include "train_loop.h"

namespace moe::model {

struct EpochMetrics {
  int64_t epoch = 0;               // 1-based, counted within this train call
  double loss = 0;                 // mean over samples of cross-entropy + auxLossWeight * aux
  double classification_loss = 0; // mean cross-entropy
  double aux_loss = 0;             // mean load-balancing loss (0 for the dense model)
  double z_loss = 0;               // mean router z-loss (0 for the dense model and hash routing)
  std::vector<double> expert_load; // MoE: share of the epoch's expert assignments each expert ran
  double dropped_fraction = 0;     // MoE: dropped share (token choice: of assignments; expert choice: of inputs)
  double accuracy = 0;             // on the training batches, with the weights of that moment
  double learning_rate = 0;        // of the epoch's last step (it moves with a schedule)
  double seconds = 0;
  int64_t samples = 0;             // samples seen this epoch (fewer than n when stopped mid-epoch)
};

struct TrainResult {
  std::vector<EpochMetrics> epochs;
  bool stopped = false;  // the stop flag ended training early; the model holds the last completed step
};

// Optimiser state that outlives one train call, so that train(1 epoch) twice continues like train(2).
struct TrainerState {
  TrainLoopStatePtr loop;  // flat parameters and gradients, Adam moments, the captured step (CUDA)
  int64_t train_calls = 0;
};

using EpochCallback = std::function<void(const EpochMetrics&)>;

// inputs: [n,in] float32, labels: [n] int64 in [0,C). Both CPU, checked here (train_loop.h runs them).
// between_batches (may be empty) runs on the training thread before every batch: the binding uses it to
// serve other models' queued jobs from the one compute thread.
TrainResult train(Classifier& model, TrainerState& state, const at::Tensor& inputs, const at::Tensor& labels,
                  const TrainConfig& config, const EpochCallback& on_epoch, const std::atomic<bool>& stop,
                  const std::function<void()>& between_batches = {});

// The weights of the balancing losses in the training objective: the config's for an MoE model, 0 for
// the dense one.
struct LossWeights {
  double aux = 0, z = 0;
};
LossWeights loss_weights(const Classifier& model);

// A batch's training objective: cross-entropy, plus aux * aux_loss + z * z_loss for an MoE model, kept as
// its weighted terms: backward(scale) starts autograd from every term at once with its weight as the seed
// gradient, where summing them first would add an op and an autograd node to every step.
struct BatchLoss {
  std::vector<std::pair<at::Tensor, double>> terms;  // (scalar term, weight), the cross-entropy first

  const at::Tensor& cross_entropy() const { return terms.front().first; }

  // The gradients of scale * (sum of weight * term) into the leaves.
  void backward(double scale = 1.0) const;
};
BatchLoss batch_loss(const ForwardResult& out, const at::Tensor& labels, const LossWeights& weights);

// The epoch's report from its sums; drop_units: what `dropped` counts per input (routing.h).
EpochMetrics epoch_metrics(int64_t epoch, const EpochSums& sums, int64_t seen, int64_t drop_units,
                           const LossWeights& weights, std::chrono::steady_clock::time_point started);

// Throws a ValueError/TypeError naming what is wrong with a dataset for this model.
void check_dataset(const Classifier& model, const at::Tensor& inputs, const at::Tensor& labels);

}  // namespace moe::model
