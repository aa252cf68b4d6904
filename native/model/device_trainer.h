// The training loop for a model on a CUDA device. Everything stays on the GPU: the dataset is uploaded
// once per train call (into buffers reused by later calls of the same size), shuffled there with a seeded
// CUDA generator, the parameters and gradients live in one flat buffer each so that zeroing and Adam are
// one launch, and the epoch's metrics accumulate on the device and are read once per epoch. With
// config.cuda_graph, full batches run as one captured CUDA graph (forward, backward, Adam) replayed per
// step after a few eager warm-up steps; a last partial batch runs eagerly (its shape differs).
#pragma once
#include <atomic>
#include <memory>

#include "classifier.h"
#include "config.h"

namespace moe::model {

struct EpochMetrics;
struct TrainResult;
struct DeviceTrainState;  // flat buffers, Adam moments, dataset copies, the captured step

struct DeviceTrainStateDeleter {
  void operator()(DeviceTrainState* s) const;
};
using DeviceTrainStatePtr = std::unique_ptr<DeviceTrainState, DeviceTrainStateDeleter>;

// Same contract as train() in trainer.h; inputs/labels are CPU tensors already checked.
TrainResult train_on_device(Classifier& model, DeviceTrainStatePtr& state, const at::Tensor& inputs,
                            const at::Tensor& labels, const TrainConfig& config,
                            const std::function<void(const EpochMetrics&)>& on_epoch,
                            const std::atomic<bool>& stop);

}  // namespace moe::model
