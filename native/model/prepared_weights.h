// Weights derived from a model's parameters for inference (the output layer composed into the last hidden
// layers, first layers transposed), built once and kept across inference calls until the parameters
// change, as inference engines keep their pre-packed weights. Building them per call cost more than it
// saved below a few hundred rows (a transposed copy of every expert's first layer each time).
//
// Two ways the copy goes stale, two ways it is caught: whatever writes the parameters through raw
// pointers (training's Adam) or wholesale (load_state) calls Classifier::weights_changed(), which drops
// it; and the key, each source tensor's storage address and autograd version counter (bumped by every
// in-place ATen op), sees a direct edit such as copy_.
#pragma once
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace moe::model {

using WeightsKey = std::vector<uint64_t>;

// (address, version counter) of each defined source.
inline WeightsKey weights_key(std::initializer_list<const at::Tensor*> sources) {
  WeightsKey key;
  for (const at::Tensor* t : sources) {
    if (!t->defined()) continue;
    key.push_back(reinterpret_cast<uintptr_t>(t->data_ptr()));
    key.push_back(t->is_inference() ? 0 : static_cast<uint64_t>(t->_version()));  // (inference tensors have none)
  }
  return key;
}

// Thread-safe: concurrent inference calls share one build; each holds the shared_ptr it was given, so a
// rebuild never frees weights a running call reads. Built under InferenceMode: the copies carry no
// autograd history, and inference on them runs without autograd.
template <typename T>
class PreparedWeights {
 public:
  template <typename Build>
  std::shared_ptr<const T> get(const WeightsKey& key, Build&& build) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!value_ || key != key_) {
      value_.reset();  // the cache's old copy goes before the new one is built (a running call keeps its own)
      c10::InferenceMode inference;
      value_ = std::make_shared<const T>(build());
      key_ = key;
    }
    return value_;
  }

  // Frees the cached copy: the weights changed (and training would otherwise carry it along unused).
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    value_.reset();
  }

 private:
  std::mutex mutex_;
  WeightsKey key_;
  std::shared_ptr<const T> value_;
};

}  // namespace moe::model
