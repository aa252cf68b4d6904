// The training step's phases as RecordFunction user scopes, so that a profiler, or `npm run bench:step`'s
// observer (bench/native/step_phases.cpp), sees where a step's time goes in the training loop itself
// rather than in a copy of it. With no observer registered for user scopes a mark costs a check of the
// callback lists.
#pragma once
#include <ATen/record_function.h>

#include <array>
#include <optional>

namespace moe::model {

// The last phase also holds the step's teardown (its autograd graph and tensors are freed as the step
// returns), which belongs to the step's cost.
enum class StepPhase { kForwardAndLoss, kBackward, kAdam, kAfterStepAndSums };

inline constexpr std::array<const char*, 4> kStepPhaseNames = {
    "torch_moe::step::gather_forward_and_loss", "torch_moe::step::backward", "torch_moe::step::adam",
    "torch_moe::step::after_step_sums_and_teardown"};

// Consecutive phases of one step: begin(p) ends the phase before it; destruction ends the last (declared
// first in the step, it is destroyed after the step's other locals).
class StepPhaseMarks {
 public:
  void begin(StepPhase phase) {
    current_.reset();
    current_.emplace(at::RecordScope::USER_SCOPE);
    if (current_->isActive()) current_->before(kStepPhaseNames[static_cast<size_t>(phase)]);
  }

 private:
  std::optional<at::RecordFunction> current_;
};

}  // namespace moe::model
