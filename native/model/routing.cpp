#include "routing.h"

#include <cmath>
#include <vector>

namespace moe::model {

int64_t drop_units_per_input(const ModelConfig& c) {
  return c.routing == Routing::kExpertChoice ? 1 : c.top_k;
}

int64_t expert_capacity(double factor, int64_t T, int64_t k, int64_t E) {
  const double c = std::ceil(factor * static_cast<double>(T) * static_cast<double>(k) / static_cast<double>(E));
  return std::max<int64_t>(1, std::min<int64_t>(T, static_cast<int64_t>(c)));
}

Assignments assign_choices(const at::Tensor& idx_in, const at::Tensor& weights, int64_t E, int64_t capacity) {
  TORCH_CHECK(idx_in.device().is_cpu(), "list-based routing runs on the CPU");
  const at::Tensor idx = idx_in.contiguous();
  const int64_t T = idx.size(0), k = idx.size(1);
  const int64_t* choice = idx.data_ptr<int64_t>();
  Assignments a;
  a.demand = at::zeros({E}, at::kLong);
  int64_t* demand = a.demand.data_ptr<int64_t>();
  for (int64_t i = 0; i < T * k; ++i) demand[choice[i]] += 1;
  // Which assignments stay: by rank j first, then by input (the priority order), up to the capacity.
  std::vector<uint8_t> keep(T * k, 1);
  std::vector<int64_t> fill(E, 0);
  for (int64_t j = 0; j < k; ++j) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t e = choice[t * k + j];
      if (capacity > 0 && fill[e] >= capacity) {
        keep[t * k + j] = 0;
        ++a.dropped;
      } else {
        ++fill[e];
      }
    }
  }
  a.offsets = at::empty({E + 1}, at::kLong);
  int64_t* off = a.offsets.data_ptr<int64_t>();
  off[0] = 0;
  for (int64_t e = 0; e < E; ++e) off[e + 1] = off[e] + fill[e];
  // Rows of each expert in input order.
  const int64_t A = off[E];
  a.token = at::empty({A}, at::kLong);
  at::Tensor source = at::empty({A}, at::kLong);  // the flat t*k+j of each row
  int64_t* token = a.token.data_ptr<int64_t>();
  int64_t* src = source.data_ptr<int64_t>();
  std::vector<int64_t> next(off, off + E);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      if (!keep[t * k + j]) continue;
      const int64_t row = next[choice[t * k + j]]++;
      token[row] = t;
      src[row] = t * k + j;
    }
  }
  a.weight = weights.reshape({-1}).index_select(0, source);
  return a;
}

TopK choose_top_k(const at::Tensor& scores, const at::Tensor& selection_bias, int64_t k) {
  const at::Tensor ranked = selection_bias.defined() ? scores.detach() + selection_bias : scores.detach();
  at::Tensor idx = std::get<1>(ranked.topk(k, /*dim=*/1, /*largest=*/true, /*sorted=*/true));
  const at::Tensor chosen = scores.gather(1, idx);
  return TopK{idx, chosen / chosen.sum(1, /*keepdim=*/true)};
}

Assignments expert_choice(const at::Tensor& probs, int64_t capacity) {
  const int64_t T = probs.size(0), E = probs.size(1);
  const at::Tensor by_expert = probs.t();  // [E,T]
  const at::Tensor picked = std::get<1>(by_expert.detach().topk(capacity, /*dim=*/1, true, true));  // [E,C]
  Assignments a;
  a.token = picked.reshape({-1});
  a.weight = by_expert.gather(1, picked).reshape({-1});
  a.offsets = at::arange(0, (E + 1) * capacity, capacity, at::kLong);
  a.demand = at::full({E}, capacity, at::kLong);
  const at::Tensor taken = at::zeros({T}, at::kBool).index_fill_(0, a.token, true);
  a.dropped = T - taken.sum().item<int64_t>();
  return a;
}

at::Tensor run_assignments(const at::Tensor& x, const Assignments& a, const ExpertsFn& experts) {
  const at::Tensor rows = x.index_select(0, a.token);
  const at::Tensor out = experts(rows, a.offsets);
  return at::zeros({x.size(0), out.size(1)}, x.options()).index_add(0, a.token, out * a.weight.unsqueeze(1));
}

RoutingRecord record_of(const Assignments& a, const at::Tensor& prob_sums) {
  RoutingRecord r;
  const int64_t E = a.offsets.size(0) - 1;
  r.token = a.token;
  r.weight = a.weight.detach();
  r.load = a.offsets.narrow(0, 1, E) - a.offsets.narrow(0, 0, E);
  r.expert = at::repeat_interleave(at::arange(E, at::kLong), r.load);
  r.demand = a.demand;
  r.dropped = at::scalar_tensor(a.dropped, at::kLong);
  r.prob_sums = prob_sums.detach();
  return r;
}

}  // namespace moe::model
