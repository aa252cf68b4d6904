#include "train_loop.h"

#include <ATen/CPUGeneratorImpl.h>

#include <torch/autograd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

#include "../dist/grad_buckets.h"
#include "../ops/augment.h"
#include "../ops/fused_adam.h"
#include "cuda_graph.h"
#include "epoch_sums.h"
#include "expert_parallel.h"
#include "step_phases.h"
#include "trainer.h"

namespace moe::model {

// Eager steps before the capture: they run cuBLAS/allocator first-use work outside the graph.
constexpr int64_t kWarmupSteps = 3;

struct TrainLoopState {
  std::vector<at::Tensor> params;     // the model's parameters, views of flat_params in this order
  at::Tensor flat_params, exp_avg, exp_avg_sq, step, lr;
  at::Tensor flat_grads;              // CUDA only: the gradients' fixed home (see flatten_parameters)
  at::Tensor data_x, data_y;          // the dataset on the model's device (CUDA: fixed addresses for the graph)
  at::Tensor batch_idx;               // CUDA: [B] indices of the current full batch; the graph reads it
  EpochAccumulators sums;
  std::unique_ptr<CapturedStep> graph;
  int64_t eager_full_steps = 0;

  // Drops the captured step: it is recorded again after kWarmupSteps eager steps.
  void invalidate_graph() {
    graph.reset();
    eager_full_steps = 0;
  }
};

void TrainLoopStateDeleter::operator()(TrainLoopState* s) const { delete s; }

namespace {

// Makes every parameter a view of one flat buffer. On CUDA each gradient is pre-assigned as a view of a
// second flat buffer, so autograd accumulates in place at addresses a captured graph can keep. On the CPU
// gradients are cleared to none before each backward instead: autograd then hands over the tensor each
// backward function made (no zero-fill, no accumulate pass) and Adam reads them where they are.
void flatten_parameters(Classifier& model, TrainLoopState& s) {
  torch::NoGradGuard no_grad;
  s.params = model.parameters();
  int64_t total = 0;
  for (const auto& p : s.params) total += p.numel();
  const auto opts = s.params.front().options();
  const bool cuda = opts.device().is_cuda();
  s.flat_params = at::empty({total}, opts);
  if (cuda) s.flat_grads = at::zeros({total}, opts);
  int64_t offset = 0;
  for (auto& p : s.params) {
    const int64_t n = p.numel();
    at::Tensor view = s.flat_params.narrow(0, offset, n).view(p.sizes());
    view.copy_(p);
    p.set_data(view);
    if (cuda) p.mutable_grad() = s.flat_grads.narrow(0, offset, n).view(p.sizes());
    offset += n;
  }
  s.exp_avg = at::zeros({total}, opts);
  s.exp_avg_sq = at::zeros({total}, opts);
  s.step = at::zeros({1}, opts.dtype(at::kLong));
  s.lr = at::zeros({1}, opts);
  const bool moe = model.config().kind == ModelKind::kMoE;
  s.sums = EpochAccumulators(s.flat_params, moe ? model.config().num_experts : 0);
}

void upload_dataset(TrainLoopState& s, const at::Tensor& inputs, const at::Tensor& labels, at::Device device) {
  if (device.is_cpu()) {  // the caller's tensors themselves: no copy
    s.data_x = inputs;
    s.data_y = labels;
    return;
  }
  if (s.data_x.defined() && s.data_x.sizes() == inputs.sizes()) {
    s.data_x.copy_(inputs);  // same addresses: a captured step stays valid
    s.data_y.copy_(labels);
    return;
  }
  s.data_x = inputs.to(device);
  s.data_y = labels.to(device);
  s.invalidate_graph();  // the dataset moved: the graph read the old addresses
}

// Data parallel: rank 0's weights, optimiser state and buffers become every rank's, so that all ranks
// start a train call from the same model whatever each did before (a model loaded on one rank only).
void adopt_rank0_state(Classifier& model, TrainLoopState& s, dist::Group& group) {
  torch::NoGradGuard no_grad;
  group.broadcast(s.flat_params, 0, "the initial weights from rank 0");
  group.broadcast(s.exp_avg, 0, "Adam's first moments from rank 0");
  group.broadcast(s.exp_avg_sq, 0, "Adam's second moments from rank 0");
  group.broadcast(s.step, 0, "Adam's step count from rank 0");
  for (at::Tensor& b : model.buffers()) group.broadcast(b, 0, "the model's buffers from rank 0");
}

// Data parallel: every rank must run the same schedule over the same dataset, or their collectives stop
// matching (a hang until the timeout) or their replicas drift apart. Compared once per train call, with
// the values named (as doubles: exact for these integers).
void check_same_job(dist::Group& group, int64_t n, const TrainConfig& config, int64_t num_params) {
  const std::pair<const char*, double> settings[] = {
      {"inputs in the dataset", static_cast<double>(n)},
      {"batchSize", static_cast<double>(config.batch_size)},
      {"epochs", static_cast<double>(config.epochs)},
      {"model parameters", static_cast<double>(num_params)},
      {"expertParallel (1: on)", config.expert_parallel ? 1.0 : 0.0},
      {"learningRate", config.learning_rate},
      {"lrSchedule (1: cosine)", config.lr_schedule == LrSchedule::kCosine ? 1.0 : 0.0},
      {"translate", static_cast<double>(config.translate)},
  };
  std::vector<double> values;
  for (const auto& setting : settings) values.push_back(setting.second);
  const at::Tensor mine = at::tensor(values, at::kDouble);
  const at::Tensor all = group.all_gather(mine, "the training settings of every rank");
  const auto own = mine.accessor<double, 1>();
  const auto theirs = all.accessor<double, 2>();
  for (int r = 0; r < group.world_size(); ++r) {
    for (int64_t i = 0; i < mine.numel(); ++i) {
      TORCH_CHECK_VALUE(theirs[r][i] == own[i], "data-parallel training needs the same ", settings[i].first,
                        " on every rank: rank ", group.rank(), " has ", own[i], ", rank ", r, " has ", theirs[r][i]);
    }
  }
}

// Data parallel: rank 0's shuffling seed, so that every rank draws the same order of the dataset and
// takes its share of the same global batches, whatever each model's seed and number of train calls.
uint64_t rank0_shuffle_seed(dist::Group& group, uint64_t mine) {
  at::Tensor seed = at::tensor({static_cast<int64_t>(mine)}, at::kLong);
  group.broadcast(seed, 0, "the shuffling seed from rank 0");
  return static_cast<uint64_t>(seed.item<int64_t>());
}

// Which of s.params are the model's expert-stacked parameters.
std::vector<bool> expert_mask(Classifier& model, const TrainLoopState& s) {
  std::vector<bool> mask(s.params.size(), false);
  for (const at::Tensor& e : model.expert_parameters()) {
    for (size_t i = 0; i < s.params.size(); ++i) {
      if (s.params[i].unsafeGetTensorImpl() == e.unsafeGetTensorImpl()) mask[i] = true;
    }
  }
  return mask;
}

// Expert parallel: replaces every expert-stacked parameter, with its Adam moments, by change(tensor) (this
// rank's slice at the start of a train call; the gathered whole at its end) and rebuilds the flat state.
void change_experts(Classifier& model, TrainLoopState& s,
                    const std::function<at::Tensor(const at::Tensor&, const std::string&)>& change) {
  torch::NoGradGuard no_grad;
  const std::vector<bool> is_expert = expert_mask(model, s);
  // Every new tensor first (a collective may fail midway), then all of them at once: the model never
  // holds some experts gathered and others sliced.
  std::vector<at::Tensor> exp_avg, exp_avg_sq, changed(s.params.size());
  int64_t offset = 0;
  for (size_t i = 0; i < s.params.size(); ++i) {
    const at::Tensor& p = s.params[i];
    const int64_t n = p.numel();
    at::Tensor m = s.exp_avg.narrow(0, offset, n).view(p.sizes());
    at::Tensor v = s.exp_avg_sq.narrow(0, offset, n).view(p.sizes());
    offset += n;
    if (is_expert[i]) {
      const std::string name = "expert parameter " + std::to_string(i);
      changed[i] = change(p, name);
      m = change(m, "Adam's first moments of " + name);
      v = change(v, "Adam's second moments of " + name);
    }
    exp_avg.push_back(m);
    exp_avg_sq.push_back(v);
  }
  for (size_t i = 0; i < s.params.size(); ++i) {
    if (changed[i].defined()) s.params[i].set_data(changed[i]);
  }
  const at::Tensor step = s.step.clone(), lr = s.lr.clone();
  flatten_parameters(model, s);  // new flat buffers in the new sizes (Adam's state zeroed: refilled below)
  offset = 0;
  for (size_t i = 0; i < s.params.size(); ++i) {
    const int64_t n = s.params[i].numel();
    s.exp_avg.narrow(0, offset, n).copy_(exp_avg[i].reshape({-1}));
    s.exp_avg_sq.narrow(0, offset, n).copy_(exp_avg_sq[i].reshape({-1}));
    offset += n;
  }
  s.step.copy_(step);
  s.lr.copy_(lr);
}

// This rank's rows of a global batch [begin, begin + size): an even split, the first ranks taking fewer.
struct RankShare {
  int64_t begin = 0, size = 0;
};
RankShare rank_share(int64_t begin, int64_t size, int rank, int world) {
  const int64_t lo = size * rank / world, hi = size * (rank + 1) / world;
  return {begin + lo, hi - lo};
}

// Sets the model's process group for one train call and clears it after, also on errors: evaluation
// and prediction run on one rank and must never wait for the others.
struct GroupScope {
  GroupScope(Classifier& m, std::shared_ptr<dist::Group> g, bool expert_parallel) : model(m) {
    model.set_process_group(std::move(g), expert_parallel);
  }
  ~GroupScope() { model.set_process_group(nullptr, false); }
  Classifier& model;
};

// The steps one epoch takes: every global batch, less a last one too small to give every rank an input.
int64_t steps_per_epoch(int64_t n, int64_t batch, int world) {
  const int64_t rest = n % batch;
  return n / batch + (rest > 0 && rest >= world ? 1 : 0);
}

// The learning rate of step t (0-based) of `total` in this train call.
double scheduled_lr(const TrainConfig& config, int64_t t, int64_t total) {
  if (config.lr_schedule == LrSchedule::kConstant || total <= 1) return config.learning_rate;
  const double progress = static_cast<double>(t) / static_cast<double>(total);
  return config.learning_rate * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// A seeded generator of the device: shuffles repeat per seed, and never touch the process-global one.
at::Generator make_generator(at::Device device, uint64_t seed) {
  return device.is_cuda() ? make_cuda_generator(seed) : at::make_generator<at::CPUGeneratorImpl>(seed);
}

}  // namespace

TrainResult run_train_loop(Classifier& model, TrainLoopStatePtr& state, const at::Tensor& inputs,
                           const at::Tensor& labels, const TrainConfig& config,
                           const std::function<void(const EpochMetrics&)>& on_epoch, const std::atomic<bool>& stop,
                           const std::function<void()>& between_batches) {
  model.require_all_experts();
  const at::Device device = model.device();
  const bool cuda = device.is_cuda();
  // A captured CUDA step would replay one mask forever: dropout needs graph-safe RNG there first.
  TORCH_CHECK_VALUE(!cuda || model.config().dropout == 0, "training with dropout is not on CUDA yet; train on "
                    "device 'cpu' (a model trained with dropout runs inference on CUDA as usual)");
  const int64_t image_side = ops::square_side(model.config().input_size);
  if (config.translate > 0) {
    TORCH_CHECK_VALUE(!cuda, "translate (random translation of the training images) is not on CUDA yet; train "
                      "on device 'cpu'");
    TORCH_CHECK_VALUE(image_side > 0, "translate reads each input as a square image, but inputSize ",
                      model.config().input_size, " is not a square number of pixels");
    TORCH_CHECK_VALUE(config.translate < image_side, "translate must be smaller than the image side (",
                      image_side, " pixels), got ", config.translate);
  }
  std::unique_ptr<SideStreamScope> side_stream;  // CUDA: all work of this call, the capture included,
  if (cuda) side_stream = std::make_unique<SideStreamScope>();  // runs on one pool stream
  if (!state) {
    state.reset(new TrainLoopState());
    flatten_parameters(model, *state);
  }
  TrainLoopState& s = *state;
  upload_dataset(s, inputs, labels, device);
  s.lr.fill_(config.learning_rate);
  const int64_t B = config.batch_size, n = inputs.size(0);
  const bool use_graph = cuda && config.cuda_graph;
  if (cuda && (!s.batch_idx.defined() || s.batch_idx.size(0) != B || !config.cuda_graph)) {
    s.invalidate_graph();
    s.batch_idx = at::empty({B}, s.data_y.options());
  }
  const LossWeights weights = loss_weights(model);
  const kernels::AdamHyper hyper;

  const std::shared_ptr<dist::Group>& group = config.group;
  std::unique_ptr<dist::GradBuckets> buckets;
  std::unique_ptr<GroupScope> group_scope;
  if (group) {
    TORCH_CHECK_VALUE(!cuda, "data-parallel training of a CUDA model needs the NCCL backend, which this build "
                      "does not have yet; train on the CPU (device 'cpu') with the Gloo backend");
    int64_t num_params = 0;
    for (const auto& p : s.params) num_params += p.numel();
    check_same_job(*group, n, config, num_params);
    adopt_rank0_state(model, s, *group);
    std::vector<bool> summed(s.params.size(), true);  // expert parallel: all but the experts
    if (config.expert_parallel) {
      TORCH_CHECK_VALUE(!model.expert_parameters().empty(), "expertParallel needs an MoE model (a dense model "
                        "has no experts to spread); train it with distributed: true alone");
      const int rank = group->rank(), world = group->world_size();
      change_experts(model, s, [&](const at::Tensor& t, const std::string&) { return slice_experts(t, rank, world); });
      // Each rank's experts see every rank's inputs: their gradients are already global sums.
      const std::vector<bool> is_expert = expert_mask(model, s);
      for (size_t i = 0; i < summed.size(); ++i) summed[i] = !is_expert[i];
    }
    // Expert parallel: backward also runs all-to-alls; the buckets then wait for finish(), so that no
    // rank's collectives can interleave in a different order.
    buckets = std::make_unique<dist::GradBuckets>(s.params, summed, group, !config.expert_parallel);
    group_scope = std::make_unique<GroupScope>(model, group, config.expert_parallel);
  }
  bool any_rank_stopped = false;  // data parallel: a rank asked to stop; all stop after this step

  // One optimisation step on the rows `idx` of the dataset; touches the host nowhere (graph-capturable).
  // Data parallel: loss_scale is this rank's share of the global batch, and the gradients are summed over
  // the ranks before Adam.
  at::Tensor shifts;  // translate: each input's (dy, dx) for this epoch, drawn for the whole dataset
  auto step = [&](const at::Tensor& idx, double loss_scale) {
    StepPhaseMarks phases;  // (inside a CUDA capture they mark the recording, not the replays)
    phases.begin(StepPhase::kForwardAndLoss);
    at::Tensor x = s.data_x.index_select(0, idx);
    if (shifts.defined()) x = ops::translate_images(x, shifts.index_select(0, idx), image_side);
    const at::Tensor y = s.data_y.index_select(0, idx);
    ForwardResult out = model.forward(x);
    const BatchLoss loss = batch_loss(out, y, weights);
    phases.begin(StepPhase::kBackward);
    if (cuda) {
      s.flat_grads.zero_();
    } else {
      for (auto& p : s.params) p.mutable_grad().reset();
    }
    loss.backward(loss_scale);
    if (buckets) any_rank_stopped = buckets->finish();
    phases.begin(StepPhase::kAdam);
    torch::NoGradGuard no_grad;
    if (cuda) {
      ops::fused_adam_step(s.flat_params, s.flat_grads, s.exp_avg, s.exp_avg_sq, s.lr, s.step, hyper);
    } else {
      std::vector<at::Tensor> grads;
      grads.reserve(s.params.size());
      for (size_t i = 0; i < s.params.size(); ++i) {
        const at::Tensor& p = s.params[i];
        grads.push_back(buckets ? buckets->grad(i) : p.grad().defined() ? p.grad() : at::zeros_like(p));
      }
      ops::fused_adam_step(s.flat_params, grads, s.exp_avg, s.exp_avg_sq, s.lr, s.step, hyper);
    }
    phases.begin(StepPhase::kAfterStepAndSums);
    model.after_step(out);
    s.sums.add_step(out, loss.cross_entropy(), y, static_cast<double>(idx.size(0)));
  };

  at::Generator gen = make_generator(device, group ? rank0_shuffle_seed(*group, config.shuffle_seed) : config.shuffle_seed);
  const int64_t total_steps = config.epochs * steps_per_epoch(n, B, group ? group->world_size() : 1);
  int64_t step_index = 0;
  double last_lr = config.learning_rate;
  model.train();
  struct EvalOnExit {  // inference after a failed call (a dead peer) must not run dropout or gate noise
    Classifier& m;
    ~EvalOnExit() { m.eval(); }
  } eval_on_exit{model};
  TrainResult result;
  for (int64_t epoch = 1; epoch <= config.epochs && !result.stopped; ++epoch) {
    const auto started = std::chrono::steady_clock::now();
    const at::Tensor order = at::randperm(n, gen, s.data_y.options());
    // From the shuffling generator, after the order: the same on every rank (rank 0's seed), so that an
    // input moves alike whichever rank takes it, and runs without translate draw exactly as before.
    if (config.translate > 0) shifts = ops::random_shifts(n, config.translate, gen);
    s.sums.zero();
    int64_t seen = 0;
    for (int64_t begin = 0; begin < n; begin += B) {
      // Data parallel: every rank takes every step; a stop request travels with the step's gradients, and
      // all ranks stop after that step together.
      if (!group && stop.load(std::memory_order_relaxed)) {
        result.stopped = true;
        break;
      }
      if (between_batches) between_batches();
      const int64_t size = std::min(B, n - begin);
      if (group && size < group->world_size()) break;  // a last batch too small to give every rank an input
      if (config.lr_schedule != LrSchedule::kConstant) {
        last_lr = scheduled_lr(config, step_index++, total_steps);
        s.lr.fill_(last_lr);  // (CUDA: the captured step reads it from this tensor)
      }
      if (group) {
        const RankShare share = rank_share(begin, size, group->rank(), group->world_size());
        buckets->begin_step(stop.load(std::memory_order_relaxed),
                            "epoch " + std::to_string(epoch) + ", step " + std::to_string(begin / B + 1));
        step(order.narrow(0, share.begin, share.size),
             static_cast<double>(share.size) / static_cast<double>(size));
        seen += size;
        if (any_rank_stopped) {
          result.stopped = true;
          break;
        }
        continue;
      }
      if (!cuda || size != B) {
        step(order.narrow(0, begin, size), 1.0);
      } else {
        s.batch_idx.copy_(order.narrow(0, begin, B));
        if (s.graph) {
          s.graph->replay();
        } else if (use_graph && s.eager_full_steps >= kWarmupSteps) {
          auto graph = std::make_unique<CapturedStep>();
          graph->capture([&] { step(s.batch_idx, 1.0); });  // kept only once the capture succeeded
          s.graph = std::move(graph);
          s.graph->replay();  // capture records without running
        } else {
          step(s.batch_idx, 1.0);
          ++s.eager_full_steps;
        }
      }
      seen += size;
    }
    if (seen == 0) break;
    const at::Tensor read = s.sums.read();
    if (group) group->all_reduce_sum(read, "epoch " + std::to_string(epoch) + "'s metrics");
    const EpochSums sums = EpochAccumulators::unpack(read);
    const int64_t drop_units = model.config().kind == ModelKind::kMoE ? drop_units_per_input(model.config()) : 1;
    EpochMetrics m = epoch_metrics(epoch, sums, seen, drop_units, weights, started);
    m.learning_rate = last_lr;
    result.epochs.push_back(m);
    if (on_epoch) on_epoch(m);
  }
  if (group && config.expert_parallel) {  // every rank holds the whole model again, as between calls
    buckets.reset();  // (its hooks are on the sliced parameters)
    change_experts(model, s, [&](const at::Tensor& t, const std::string& what) {
      return gather_experts(t, *group, what + " from every rank");
    });
  }
  if (!cuda) {  // keep nothing of this call but the weights and Adam's state (the CPU data is the caller's)
    s.data_x = at::Tensor();
    s.data_y = at::Tensor();
    for (auto& p : s.params) p.mutable_grad().reset();
  }
  return result;
}

}  // namespace moe::model
