// Where a CPU training step's time goes, phase by phase, for the reference MoE and for dense256 (the
// dense model with the MoE's active parameters): the batch gather, forward and loss; backward; the Adam
// step; and after_step (bias balancing, a no-op for the reference model) with the epoch sums the
// training loop keeps and the step's teardown (its autograd graph freed). It runs the training loop itself (moe::model::train, one epoch per call, on the
// first 5,000 MNIST training images, batch 64) and times the phases the loop marks as RecordFunction user
// scopes (native/model/step_phases.h), so what it measures is what a train() call runs. The two models
// alternate epoch by epoch for `rounds` rounds after a warm-up epoch each; each round gives the mean
// microseconds per step of every phase, and one JSON line per model gives the medians over the rounds.
// Run through `node bench/step.mjs`, which passes the MNIST files and writes bench/results/.
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../native/model/classifier.h"
#include "../../native/model/step_phases.h"
#include "../../native/model/trainer.h"

namespace {

using moe::model::kStepPhaseNames;
using Clock = std::chrono::steady_clock;

constexpr int64_t kImages = 5000, kBatch = 64, kPixels = 784;
constexpr std::array<const char*, 4> kPhases = {"gather, forward and loss", "backward", "Adam",
                                                "after_step, epoch sums and teardown"};

// The bytes of an IDX file after its `header` bytes, `count` records of `record` bytes.
std::vector<uint8_t> read_idx(const std::string& file, int64_t header, int64_t count, int64_t record) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file);
  std::vector<uint8_t> bytes(static_cast<size_t>(count * record));
  in.seekg(header);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw std::runtime_error(file + " is shorter than " + std::to_string(count) + " records");
  return bytes;
}

// The observer: microseconds per phase since the last reset, and the steps (forward phases) seen.
// RecordFunction callbacks are plain function pointers, hence one global.
struct PhaseTotals {
  std::array<double, 4> us{};
  int64_t steps = 0;
};
PhaseTotals totals;

struct PhaseStart : at::ObserverContext {
  Clock::time_point started = Clock::now();
};

std::unique_ptr<at::ObserverContext> on_phase_start(const at::RecordFunction&) {
  return std::make_unique<PhaseStart>();
}

void on_phase_end(const at::RecordFunction& fn, at::ObserverContext* ctx) {
  const Clock::time_point started = static_cast<PhaseStart*>(ctx)->started;
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - started).count();
  for (size_t i = 0; i < kStepPhaseNames.size(); ++i) {
    if (std::strcmp(fn.name(), kStepPhaseNames[i]) != 0) continue;
    totals.us[i] += us;
    if (i == 0) ++totals.steps;
  }
}

// A model and the state its train() calls keep (flat parameters, Adam's moments) from epoch to epoch.
struct Trainee {
  std::string name;
  std::shared_ptr<moe::model::Classifier> model;
  moe::model::TrainerState state;

  Trainee(std::string n, const moe::model::ModelConfig& config)
      : name(std::move(n)), model(moe::model::make_classifier(config)) {}

  // One epoch of train() over the dataset; the mean microseconds per step of each phase.
  std::array<double, 4> epoch(const at::Tensor& x, const at::Tensor& y, uint64_t shuffle_seed) {
    moe::model::TrainConfig config;
    config.epochs = 1;
    config.batch_size = kBatch;
    config.learning_rate = 1e-3;
    config.shuffle_seed = shuffle_seed;
    const std::atomic<bool> stop{false};
    totals = PhaseTotals{};
    moe::model::train(*model, state, x, y, config, {}, stop);
    if (totals.steps == 0) throw std::runtime_error("the training loop marked no step phases");
    std::array<double, 4> us = totals.us;
    for (double& v : us) v /= static_cast<double>(totals.steps);
    return us;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: moe_step_bench <train-images-idx3-ubyte> <train-labels-idx1-ubyte> [rounds] [threads] "
                         "[moe|dense256: that model alone, for a profiler]\n");
    return 2;
  }
  const int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 9;
  at::set_num_threads(argc > 4 ? std::max(1, std::atoi(argv[4])) : 1);
  const std::vector<uint8_t> pixels = read_idx(argv[1], 16, kImages, kPixels), labels = read_idx(argv[2], 8, kImages, 1);
  const at::Tensor x_all = at::from_blob(const_cast<uint8_t*>(pixels.data()), {kImages, kPixels}, at::kByte).to(at::kFloat) / 255.0;
  const at::Tensor y_all = at::from_blob(const_cast<uint8_t*>(labels.data()), {kImages}, at::kByte).to(at::kLong);

  moe::model::ModelConfig moe_config;  // the reference MoE
  moe::model::ModelConfig dense_config;
  dense_config.kind = moe::model::ModelKind::kDense;
  dense_config.expert_hidden_size = 256;  // dense256: one FFN of two experts' shapes
  std::vector<Trainee> models;
  models.reserve(2);
  const std::string only = argc > 5 ? argv[5] : "";
  if (only.empty() || only == "moe") models.emplace_back("moe", moe_config);
  if (only.empty() || only == "dense256") models.emplace_back("dense256", dense_config);
  if (models.empty()) {
    std::fprintf(stderr, "unknown model '%s': moe or dense256\n", only.c_str());
    return 2;
  }

  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_phase_start, on_phase_end).scopes({at::RecordScope::USER_SCOPE}));
  std::vector<std::vector<std::array<double, 4>>> per_round(models.size());
  for (int r = -1; r < rounds; ++r) {  // round -1: warm-up
    for (size_t m = 0; m < models.size(); ++m) {
      const std::array<double, 4> us = models[m].epoch(x_all, y_all, static_cast<uint64_t>(r + 1));
      if (r >= 0) per_round[m].push_back(us);
    }
  }
  at::removeCallback(handle);
  for (size_t m = 0; m < models.size(); ++m) {
    std::printf("{\"model\": \"%s\", \"params\": %lld, \"threads\": %d, \"rounds\": %d, \"phases_us\": {",
                models[m].name.c_str(), static_cast<long long>(models[m].model->param_count().total), at::get_num_threads(), rounds);
    std::vector<double> step_us;
    for (const auto& us : per_round[m]) step_us.push_back(us[0] + us[1] + us[2] + us[3]);
    for (size_t i = 0; i < kPhases.size(); ++i) {
      std::vector<double> v;
      for (const auto& us : per_round[m]) v.push_back(us[i]);
      std::printf("\"%s\": %.1f, ", kPhases[i], median(v));
    }
    std::printf("\"step\": %.1f}}\n", median(step_us));
  }
  return 0;
}
