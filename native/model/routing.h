// The routers of the MoE layer other than the fused reference gate, as lists of expert assignments
// (which input each expert runs, with what weight), and the expert computation over such a list. CPU:
// the lists are built on the host from the batch's choices.
//
//   token choice   each input picks its k experts: softmax scores (Shazeer et al. 2017, Switch, GShard)
//                  or sigmoid affinities (DeepSeek-V3), optionally with a per-expert selection bias
//                  (DeepSeek-V3's auxiliary-loss-free balancing) and a per-expert capacity that drops
//                  the overflow (GShard, Switch);
//   expert choice  each expert picks its `capacity` inputs (Zhou et al. 2022);
//   hash           fixed choices from a hash of the input (Roller et al. 2021; kernels/row_hash.h).
#pragma once
#include <functional>
#include <ATen/ATen.h>

#include "config.h"

namespace moe::model {

// What one forward's routing did, for the training metrics, balancing and routing statistics. In a
// training step (training mode with grad mode on) the reference (dropless top-k) routing leaves token,
// expert, weight and dropped undefined: the step reads only the counts, and on a 64-input batch building
// lists it would discard cost several percent of the step. Evaluation, prediction and routing statistics
// (InferenceMode) get every field.
struct RoutingRecord {
  at::Tensor token;      // [A] int64: the input of each assignment an expert ran
  at::Tensor expert;     // [A] int64: its expert
  at::Tensor weight;     // [A] float, no grad: the gate weight of that assignment in the MoE output
  at::Tensor load;       // [E] int64: assignments each expert ran
  at::Tensor demand;     // [E] int64: assignments the router asked of each expert, before capacity drops
  at::Tensor dropped;    // [] int64: token choice: assignments dropped; expert choice: inputs no expert took
  at::Tensor prob_sums;  // [E] float, no grad: sum over inputs of the gate's normalised scores
};

// What `dropped` counts per input: k assignments (token choice and hash) or the input itself (expert choice).
int64_t drop_units_per_input(const ModelConfig& config);

// Expert assignments sorted by expert: expert e runs the inputs token[offsets[e] .. offsets[e+1]).
struct Assignments {
  at::Tensor token;     // [A] int64
  at::Tensor weight;    // [A] float; differentiable where the router's scores are
  at::Tensor offsets;   // [E+1] int64, CPU
  at::Tensor demand;    // [E] int64, before capacity drops
  int64_t dropped = 0;  // as RoutingRecord::dropped
};

// Assignments per expert and batch: ceil(factor * T * k / E), clamped to [1, T] (an expert can take an
// input once at most). Expert choice uses k from the config the same way (Zhou et al.'s capacity factor).
int64_t expert_capacity(double factor, int64_t T, int64_t k, int64_t E);

// Per-input choices idx [T,k] (distinct experts per row) with weights [T,k] -> assignments. With a
// capacity (> 0), an expert takes at most that many: all first choices before any second choice and,
// within one rank, earlier inputs first (GShard's priority); the rest is dropped (contributes zero).
Assignments assign_choices(const at::Tensor& idx, const at::Tensor& weights, int64_t num_experts, int64_t capacity);

// Token choice: per input the k largest of scores + selection_bias (undefined: no bias; the bias only
// selects), weighted by the chosen scores normalised to sum to 1. scores [T,E] -> idx, weights [T,k].
struct TopK {
  at::Tensor idx, weights;
};
TopK choose_top_k(const at::Tensor& scores, const at::Tensor& selection_bias, int64_t k);

// Expert choice: expert e takes the `capacity` inputs with the largest probs[:, e], weighted by that
// probability (not renormalised). probs [T,E] softmax over experts.
Assignments expert_choice(const at::Tensor& probs, int64_t capacity);

// The experts over expert-contiguous rows: (rows [A,H], offsets [E+1] int64 CPU) -> out [A,H]. The MoE
// layer passes ops::expert_ffn with its weights, or the expert-parallel exchange (model/expert_parallel.h).
using ExpertsFn = std::function<at::Tensor(const at::Tensor& rows, const at::Tensor& offsets)>;

// y[t] = sum over t's assignments of weight * FFN_e(x[t]) (zero for an input with none). Differentiable.
at::Tensor run_assignments(const at::Tensor& x, const Assignments& a, const ExpertsFn& experts);

// The record of a list-based routing.
RoutingRecord record_of(const Assignments& a, const at::Tensor& prob_sums);

}  // namespace moe::model
