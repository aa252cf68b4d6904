// Inference-side computations over a whole dataset, in batches, without autograd: evaluation (accuracy,
// loss, per-class accuracy, confusion), routing statistics (which expert each class goes to), and
// class probabilities.
#pragma once
#include <vector>

#include "classifier.h"

namespace moe::model {

struct EvalResult {
  double accuracy = 0;
  double loss = 0;  // mean cross-entropy
  std::vector<double> per_class_accuracy;        // [C]; NaN for a class with no samples
  std::vector<std::vector<int64_t>> confusion;   // [true class][predicted class]
};

struct ExpertShare {
  int64_t expert = 0;
  double share = 0;  // fraction of the class's top-k assignments that went to this expert
};

struct RoutingStats {
  std::vector<double> expert_load;                // [E] fraction of all assignments, sums to 1
  std::vector<double> importance;                 // [E] mean gate probability, sums to 1
  std::vector<std::vector<double>> per_class;     // [C][E] assignment shares, rows sum to 1 (0 if class absent)
  std::vector<std::vector<int64_t>> per_class_counts;  // [C][E] assignment counts
  std::vector<ExpertShare> primary, secondary;    // [C] the two largest shares of each class
  double entropy = 0;  // Shannon entropy of expert_load, in nats (ln E at perfect balance)
  double load_cv = 0;  // coefficient of variation (population std / mean) of expert_load
  // [E][E] share of inputs that ran on both experts i and j; the diagonal: on expert i at all
  std::vector<std::vector<double>> co_activation;
  // token choice: share of the n*k assignments dropped by capacity; expert choice: share of inputs no expert took
  double dropped_fraction = 0;
};

// inputs: [n,in] float32; labels: [n] int64.
EvalResult evaluate(Classifier& model, const at::Tensor& inputs, const at::Tensor& labels, int64_t batch_size);
RoutingStats routing_stats(Classifier& model, const at::Tensor& inputs, const at::Tensor& labels,
                           int64_t batch_size);
// Class probabilities and, when asked (MoE only), each input's experts with their gate weights.
struct Prediction {
  at::Tensor probs;            // [n,C] float
  at::Tensor routing_offsets;  // [n+1] int32: input i's assignments are [offsets[i], offsets[i+1])
  at::Tensor experts;          // [A] int32, per input by decreasing weight
  at::Tensor weights;          // [A] float
};
Prediction predict(Classifier& model, const at::Tensor& inputs, int64_t batch_size, bool with_routing = false);

}  // namespace moe::model
