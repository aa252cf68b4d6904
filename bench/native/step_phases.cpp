// Where a CPU training step's time goes, phase by phase, for the reference MoE and for dense256 (the
// dense model with the MoE's active parameters): the batch gather, forward and loss; backward; the Adam
// step; and after_step (bias balancing, a no-op for the reference model) with the epoch sums the
// training loop keeps. The step is the one model/train_loop.cpp runs on the
// CPU (parameters in one flat buffer, gradients cleared to none before backward, one fused Adam pass),
// on the first 5,000 MNIST training images, batch 64. The two models alternate epoch by epoch for
// `rounds` rounds after a warm-up epoch each; each round gives the mean microseconds per step of every
// phase, and one JSON line per model gives the medians over the rounds.
// Run through `node bench/step.mjs`, which passes the MNIST files and writes bench/results/.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../native/model/classifier.h"
#include "../../native/model/trainer.h"
#include "../../native/ops/fused_adam.h"

namespace {

using moe::model::Classifier;
using Clock = std::chrono::steady_clock;

constexpr int64_t kImages = 5000, kBatch = 64, kPixels = 784;
constexpr std::array<const char*, 4> kPhases = {"gather, forward and loss", "backward", "Adam",
                                                "after_step and epoch sums"};

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

// A model ready to train as the CPU training loop trains it: parameters viewed from one flat buffer,
// Adam's moments beside it, the epoch sums the loop keeps.
struct Trainee {
  std::string name;
  std::shared_ptr<Classifier> model;
  std::vector<at::Tensor> params;
  at::Tensor flat, exp_avg, exp_avg_sq, step, lr, ce_sum, aux_sum, z_sum, correct, dropped_sum, load_sum;
  moe::model::LossWeights weights;

  Trainee(std::string n, const moe::model::ModelConfig& config)
      : name(std::move(n)), model(moe::model::make_classifier(config)) {
    torch::NoGradGuard no_grad;
    params = model->parameters();
    int64_t total = 0;
    for (const auto& p : params) total += p.numel();
    flat = at::empty({total});
    int64_t offset = 0;
    for (auto& p : params) {
      at::Tensor view = flat.narrow(0, offset, p.numel()).view(p.sizes());
      view.copy_(p);
      p.set_data(view);
      offset += p.numel();
    }
    exp_avg = at::zeros({total});
    exp_avg_sq = at::zeros({total});
    step = at::zeros({1}, at::kLong);
    lr = at::full({1}, 1e-3);
    ce_sum = at::zeros({}, at::kDouble);
    aux_sum = at::zeros({}, at::kDouble);
    z_sum = at::zeros({}, at::kDouble);
    dropped_sum = at::zeros({}, at::kLong);
    correct = at::zeros({}, at::kLong);
    load_sum = at::zeros({config.num_experts}, at::kLong);
    weights = moe::model::loss_weights(*model);
    model->train();
  }

  // One epoch over `order`; adds each phase's time to `us` and returns the number of steps.
  int64_t epoch(const at::Tensor& x_all, const at::Tensor& y_all, const at::Tensor& order, std::array<double, 4>& us) {
    const moe::kernels::AdamHyper hyper;
    int64_t steps = 0;
    for (int64_t begin = 0; begin < order.size(0); begin += kBatch, ++steps) {
      const at::Tensor idx = order.narrow(0, begin, std::min(kBatch, order.size(0) - begin));
      const auto t0 = Clock::now();
      const at::Tensor x = x_all.index_select(0, idx), y = y_all.index_select(0, idx);
      moe::model::ForwardResult out = model->forward(x);
      const moe::model::BatchLoss loss = moe::model::batch_loss(out, y, weights);
      const auto t1 = Clock::now();
      for (auto& p : params) p.mutable_grad().reset();
      loss.total.backward();
      const auto t2 = Clock::now();
      {
        torch::NoGradGuard no_grad;
        std::vector<at::Tensor> grads;
        for (const auto& p : params) grads.push_back(p.grad().defined() ? p.grad() : at::zeros_like(p));
        moe::ops::fused_adam_step(flat, grads, exp_avg, exp_avg_sq, lr, step, hyper);
      }
      const auto t3 = Clock::now();
      {
        torch::NoGradGuard no_grad;
        model->after_step(out);
        const double size = static_cast<double>(idx.size(0));
        ce_sum.add_(loss.cross_entropy.detach().to(at::kDouble), size);
        if (out.aux_loss.defined()) aux_sum.add_(out.aux_loss.detach().to(at::kDouble), size);
        if (out.z_loss.defined()) z_sum.add_(out.z_loss.detach().to(at::kDouble), size);
        if (out.routing.load.defined()) {
          load_sum.add_(out.routing.load);
          dropped_sum.add_(out.routing.dropped);
        }
        correct.add_(out.logits.argmax(1).eq(y).sum());
      }
      const auto t4 = Clock::now();
      const std::array<Clock::time_point, 5> t = {t0, t1, t2, t3, t4};
      for (size_t i = 0; i < us.size(); ++i) us[i] += std::chrono::duration<double, std::micro>(t[i + 1] - t[i]).count();
    }
    return steps;
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: moe_step_bench <train-images-idx3-ubyte> <train-labels-idx1-ubyte> [rounds] [threads]\n");
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
  models.emplace_back("moe", moe_config);
  models.emplace_back("dense256", dense_config);

  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(0);
  std::vector<std::vector<std::array<double, 4>>> per_round(models.size());
  for (int r = -1; r < rounds; ++r) {  // round -1: warm-up
    const at::Tensor order = at::randperm(kImages, gen, at::kLong);
    for (size_t m = 0; m < models.size(); ++m) {
      std::array<double, 4> us{};
      const int64_t steps = models[m].epoch(x_all, y_all, order, us);
      for (double& v : us) v /= static_cast<double>(steps);
      if (r >= 0) per_round[m].push_back(us);
    }
  }
  for (size_t m = 0; m < models.size(); ++m) {
    std::printf("{\"model\": \"%s\", \"params\": %lld, \"threads\": %d, \"rounds\": %d, \"phases_us\": {",
                models[m].name.c_str(), static_cast<long long>(models[m].flat.numel()), at::get_num_threads(), rounds);
    std::vector<double> totals;
    for (const auto& us : per_round[m]) totals.push_back(us[0] + us[1] + us[2] + us[3]);
    for (size_t i = 0; i < kPhases.size(); ++i) {
      std::vector<double> v;
      for (const auto& us : per_round[m]) v.push_back(us[i]);
      std::printf("\"%s\": %.1f, ", kPhases[i], median(v));
    }
    std::printf("\"step\": %.1f}}\n", median(totals));
  }
  return 0;
}
