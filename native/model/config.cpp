// Native re-check of the configuration (lib/ validates first; this protects direct native callers).
#include "config.h"

#include <c10/util/Exception.h>

namespace moe::model {

void validate(const ModelConfig& c) {
  TORCH_CHECK_VALUE(c.input_size >= 1, "inputSize must be an integer >= 1, got ", c.input_size);
  TORCH_CHECK_VALUE(c.hidden_size >= 1, "hiddenSize must be an integer >= 1, got ", c.hidden_size);
  TORCH_CHECK_VALUE(c.expert_hidden_size >= 1, "expertHiddenSize must be an integer >= 1, got ",
                    c.expert_hidden_size);
  TORCH_CHECK_VALUE(c.num_classes >= 2, "numClasses must be an integer >= 2, got ", c.num_classes);
  if (c.kind == ModelKind::kMoE) {
    TORCH_CHECK_VALUE(c.num_experts >= 1, "numExperts must be an integer >= 1, got ", c.num_experts);
    TORCH_CHECK_VALUE(c.top_k >= 1 && c.top_k <= c.num_experts, "topK must be an integer in [1, numExperts=",
                      c.num_experts, "], got ", c.top_k);
    TORCH_CHECK_VALUE(c.aux_loss_weight >= 0, "auxLossWeight must be >= 0, got ", c.aux_loss_weight);
  }
  TORCH_CHECK_VALUE(c.device == "cpu" || c.device == "cuda", "device must be 'cpu' or 'cuda', got '", c.device,
                    "'");
}

void validate(const TrainConfig& c) {
  TORCH_CHECK_VALUE(c.epochs >= 1, "epochs must be an integer >= 1, got ", c.epochs);
  TORCH_CHECK_VALUE(c.batch_size >= 1, "batchSize must be an integer >= 1, got ", c.batch_size);
  TORCH_CHECK_VALUE(c.learning_rate > 0, "learningRate must be > 0, got ", c.learning_rate);
}

}  // namespace moe::model
