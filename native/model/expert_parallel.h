// Expert parallelism: each of the W ranks owns E/W consecutive experts (rank r: [r*E/W, (r+1)*E/W)).
// Routed rows travel to their experts' ranks with an all-to-all (the counts first, then the rows), are
// run through the local experts, and come back the same way; autograd runs the exchanges in reverse.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "../dist/group.h"

namespace moe::model {

// rows [A,H] sorted by (global) expert, offsets [E+1] int64 CPU; w1 [E/W,F,H], b1 [E/W,F], w2 [E/W,H,F],
// b2 [E/W,H]: this rank's experts -> out [A,H], each row through its expert wherever that expert lives.
// Equals ops::expert_ffn with all E experts' weights, in value and in gradient (every rank must call it
// at the same point of its step: it is a collective).
at::Tensor sharded_expert_ffn(const at::Tensor& rows, const at::Tensor& offsets, const at::Tensor& w1,
                              const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2,
                              const std::shared_ptr<dist::Group>& group);

// The rank's experts of an expert-stacked tensor [E,...] -> [E/W,...] (a copy). Throws unless W divides E.
at::Tensor slice_experts(const at::Tensor& stacked, int rank, int world);
// The inverse: every rank's slice [E/W,...] -> the full [E,...] on every rank.
at::Tensor gather_experts(const at::Tensor& slice, dist::Group& group, const std::string& what);

}  // namespace moe::model
