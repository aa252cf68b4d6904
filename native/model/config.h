// Plain configuration structs, filled by binding/ (validated in lib/ first) and re-checked by the model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace moe::dist {
class Group;
}

namespace moe::model {

enum class ModelKind { kMoE, kDense };

// How the MoE layer assigns inputs to experts (model/routing.h has the definitions and the papers).
enum class Routing { kSoftmaxTopK, kSigmoidTopK, kExpertChoice, kHash };
const char* routing_name(Routing r);  // "softmax-topk", ...
Routing parse_routing(const std::string& name);  // throws c10::ValueError listing the accepted names

struct ModelConfig {
  ModelKind kind = ModelKind::kMoE;
  int64_t input_size = 784;
  int64_t hidden_size = 256;
  int64_t expert_hidden_size = 128;
  int64_t num_experts = 8;  // MoE only
  int64_t top_k = 2;        // MoE only
  int64_t num_classes = 10;
  double aux_loss_weight = 0.1;  // MoE only
  // Routing and balancing (MoE only; the defaults are the reference model). 0 means off for each number.
  Routing routing = Routing::kSoftmaxTopK;
  double gate_noise = 0;           // std of Gaussian noise on the gate logits, training only
  double gate_jitter = 0;          // eps: gate input times U(1-eps, 1+eps), training only
  double z_loss_weight = 0;        // weight of the router z-loss
  double bias_balancing_rate = 0;  // auxiliary-loss-free balancing: selection-bias step per batch
  int64_t shared_experts = 0;      // experts every input uses, beside the routed ones
  double capacity_factor = 0;      // 0 = unset: dropless token choice, 1.0 for expert choice
  // Training only: the probability of zeroing each hidden activation, after the input layer and after the
  // MoE layer (or the dense FFN). 0 = off.
  double dropout = 0;
  uint64_t seed = 0;
  // Where the model lives: "cpu" or "cuda" (a run-time choice, not part of a model file).
  std::string device = "cpu";
  // Benchmark switch (MoE only): tokens go round-robin to experts with equal weights whatever the gate
  // says, so that the expert path can be timed apart from the router's balance (as MegaBlocks and
  // Megatron offer). The gate still runs and its aux loss still trains it. Not for real training.
  bool force_balanced_routing = false;
};

// How the learning rate moves over one train call: constant, or cosine decay from learning_rate at the
// first step to ~0 at the last (Loshchilov & Hutter's SGDR without restarts).
enum class LrSchedule { kConstant, kCosine };

struct TrainConfig {
  int64_t epochs = 1;
  int64_t batch_size = 64;
  double learning_rate = 1e-3;
  LrSchedule lr_schedule = LrSchedule::kConstant;
  uint64_t shuffle_seed = 0;  // the model's seed plus the number of train calls so far
  bool cuda_graph = true;     // CUDA only: capture the full-batch step once and replay it
  // Data parallel (nullptr: one process): each rank trains on its share of every global batch of
  // batch_size inputs and the gradients are summed over the group's ranks (model/train_loop.h).
  std::shared_ptr<dist::Group> group;
  // With a group: the MoE layer's experts are spread over the ranks, num_experts / world size on each
  // (model/expert_parallel.h); the other parameters stay data-parallel.
  bool expert_parallel = false;
  // Data augmentation: each input, read as a square image, moves by up to `translate` whole pixels along
  // each axis (a fresh draw per input and epoch, zeros shifted in). 0: off. CPU only.
  int64_t translate = 0;
};

// True when the MoE layer runs the reference routing (fused softmax top-k gate, dropless, no extras):
// the only routing the CUDA path has so far.
bool uses_reference_routing(const ModelConfig& config);
// The first option that differs from the reference routing ("" when none), as the JS API names it.
std::string non_reference_option(const ModelConfig& config);

// Throws c10::ValueError naming the field when a value is outside what is accepted.
void validate(const ModelConfig& config);
void validate(const TrainConfig& config);

}  // namespace moe::model
