// The training loop, one for both devices. Parameters and gradients live in one flat buffer each, so that
// zeroing and Adam are one pass (one launch on CUDA); the epoch's metrics accumulate in tensors on the
// model's device and are read once per epoch. On CUDA the dataset is uploaded once per train call (into
// buffers reused by later calls of the same size) and shuffled there with a seeded CUDA generator; with
// config.cuda_graph, full batches run as one captured CUDA graph (forward, backward, Adam) replayed per
// step after a few eager warm-up steps, and a last partial batch runs eagerly (its shape differs).
#pragma once
#include <atomic>
#include <functional>
#include <memory>

#include "classifier.h"
#include "config.h"

namespace moe::model {

struct EpochMetrics;
struct TrainResult;
struct TrainLoopState;  // flat buffers, Adam moments, dataset copies, the captured step

struct TrainLoopStateDeleter {
  void operator()(TrainLoopState* s) const;
};
using TrainLoopStatePtr = std::unique_ptr<TrainLoopState, TrainLoopStateDeleter>;

// Same contract as train() in trainer.h; inputs/labels are CPU tensors already checked.
TrainResult run_train_loop(Classifier& model, TrainLoopStatePtr& state, const at::Tensor& inputs,
                           const at::Tensor& labels, const TrainConfig& config,
                           const std::function<void(const EpochMetrics&)>& on_epoch, const std::atomic<bool>& stop,
                           const std::function<void()>& between_batches);

}  // namespace moe::model
