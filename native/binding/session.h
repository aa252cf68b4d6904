// What one JS model object owns natively: the model, the optimiser state, and the flags that schedule
// work on it. Shared (shared_ptr) with running jobs, so dispose() never frees a model a thread still uses.
// `training` and `readers` are only touched on the JS thread; `stop` is read by the training thread.
#pragma once
#include <atomic>
#include <memory>

#include "../model/classifier.h"
#include "../model/trainer.h"

namespace moe::binding {

struct Session {
  std::shared_ptr<model::Classifier> model;
  model::TrainerState trainer;
  bool training = false;
  int readers = 0;  // running evaluate / predict / routingStats jobs
  std::atomic<bool> stop{false};
};

}  // namespace moe::binding
