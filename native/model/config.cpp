// Native re-check of the configuration (lib/ validates first; this protects direct native callers).
#include "config.h"

#include <c10/util/Exception.h>

namespace moe::model {
namespace {

constexpr const char* kRoutingNames[] = {"softmax-topk", "sigmoid-topk", "expert-choice", "hash"};

// Routing and balancing options that contradict each other or the routing method.
void validate_routing(const ModelConfig& c) {
  const std::string r = std::string("routing '") + routing_name(c.routing) + "'";
  TORCH_CHECK_VALUE(c.gate_noise >= 0, "gateNoise must be >= 0, got ", c.gate_noise);
  TORCH_CHECK_VALUE(c.gate_jitter >= 0 && c.gate_jitter < 1, "gateJitter must be in [0, 1), got ", c.gate_jitter);
  TORCH_CHECK_VALUE(c.z_loss_weight >= 0, "zLossWeight must be >= 0, got ", c.z_loss_weight);
  TORCH_CHECK_VALUE(c.bias_balancing_rate >= 0, "biasBalancing.rate must be > 0, got ", c.bias_balancing_rate);
  TORCH_CHECK_VALUE(c.shared_experts >= 0, "sharedExperts must be an integer >= 0, got ", c.shared_experts);
  TORCH_CHECK_VALUE(c.capacity_factor >= 0, "capacityFactor must be > 0 (leave it unset for dropless routing), got ",
                    c.capacity_factor);
  const bool token_choice = c.routing == Routing::kSoftmaxTopK || c.routing == Routing::kSigmoidTopK;
  if (!token_choice) {
    // Expert choice fills every expert to exactly its capacity, and hash routing has no gate: there is no
    // load for these to balance.
    TORCH_CHECK_VALUE(c.aux_loss_weight == 0, "auxLossWeight has no effect with ", r,
                      " (the load is fixed by the routing); leave it unset or 0, got ", c.aux_loss_weight);
    TORCH_CHECK_VALUE(c.bias_balancing_rate == 0, "biasBalancing needs token-choice routing ('softmax-topk' or "
                      "'sigmoid-topk'), not ", r);
  }
  if (c.routing == Routing::kHash) {
    TORCH_CHECK_VALUE(c.gate_noise == 0 && c.gate_jitter == 0 && c.z_loss_weight == 0,
                      "gateNoise, gateJitter and zLossWeight act on the gate, which ", r, " does not have");
  }
  TORCH_CHECK_VALUE(!c.force_balanced_routing || uses_reference_routing(c),
                    "forceBalancedRouting is a benchmark switch of the reference routing only "
                    "(softmax-topk, no capacityFactor, no gate noise or balancing extras)");
}

}  // namespace

const char* routing_name(Routing r) { return kRoutingNames[static_cast<int>(r)]; }

Routing parse_routing(const std::string& name) {
  for (int i = 0; i < 4; ++i) {
    if (name == kRoutingNames[i]) return static_cast<Routing>(i);
  }
  TORCH_CHECK_VALUE(false, "routing must be one of 'softmax-topk', 'sigmoid-topk', 'expert-choice', 'hash'; got '",
                    name, "'");
}

std::string non_reference_option(const ModelConfig& c) {
  if (c.routing != Routing::kSoftmaxTopK) return std::string("routing '") + routing_name(c.routing) + "'";
  if (c.gate_noise != 0) return "gateNoise";
  if (c.gate_jitter != 0) return "gateJitter";
  if (c.z_loss_weight != 0) return "zLossWeight";
  if (c.bias_balancing_rate != 0) return "biasBalancing";
  if (c.shared_experts != 0) return "sharedExperts";
  if (c.capacity_factor != 0) return "capacityFactor";
  return "";
}

bool uses_reference_routing(const ModelConfig& c) { return non_reference_option(c).empty(); }

void validate(const ModelConfig& c) {
  TORCH_CHECK_VALUE(c.input_size >= 1, "inputSize must be an integer >= 1, got ", c.input_size);
  TORCH_CHECK_VALUE(c.hidden_size >= 1, "hiddenSize must be an integer >= 1, got ", c.hidden_size);
  TORCH_CHECK_VALUE(c.expert_hidden_size >= 1, "expertHiddenSize must be an integer >= 1, got ",
                    c.expert_hidden_size);
  TORCH_CHECK_VALUE(c.num_classes >= 2, "numClasses must be an integer >= 2, got ", c.num_classes);
  TORCH_CHECK_VALUE(c.dropout >= 0 && c.dropout < 1, "dropout must be in [0, 1), got ", c.dropout);
  if (c.kind == ModelKind::kMoE) {
    TORCH_CHECK_VALUE(c.num_experts >= 1, "numExperts must be an integer >= 1, got ", c.num_experts);
    TORCH_CHECK_VALUE(c.top_k >= 1 && c.top_k <= c.num_experts, "topK must be an integer in [1, numExperts=",
                      c.num_experts, "], got ", c.top_k);
    TORCH_CHECK_VALUE(c.aux_loss_weight >= 0, "auxLossWeight must be >= 0, got ", c.aux_loss_weight);
    validate_routing(c);
    // The CUDA path has the fused kernels of the reference routing only; the other methods run ATen ops
    // and host-side assignment lists that are not yet ported (or checked) there.
    TORCH_CHECK_VALUE(c.device != "cuda" || uses_reference_routing(c), non_reference_option(c),
                      " is not on CUDA yet (the CUDA path runs the default dropless softmax-topk routing only); "
                      "use device 'cpu'");
  }
  TORCH_CHECK_VALUE(c.device == "cpu" || c.device == "cuda", "device must be 'cpu' or 'cuda', got '", c.device,
                    "'");
}

void validate(const TrainConfig& c) {
  TORCH_CHECK_VALUE(c.epochs >= 1, "epochs must be an integer >= 1, got ", c.epochs);
  TORCH_CHECK_VALUE(c.batch_size >= 1, "batchSize must be an integer >= 1, got ", c.batch_size);
  TORCH_CHECK_VALUE(c.learning_rate > 0, "learningRate must be > 0, got ", c.learning_rate);
  TORCH_CHECK_VALUE(c.translate >= 0, "translate must be an integer >= 0 (pixels), got ", c.translate);
}

}  // namespace moe::model
