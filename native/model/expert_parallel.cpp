#include "expert_parallel.h"

#include <vector>

#include "../dist/exchange_rows.h"
#include "../ops/expert_ffn.h"

namespace moe::model {
namespace {

// Rows arrive grouped by source rank, and within a source by local expert. The local experts need them
// grouped by expert: `order` lists the received rows expert by expert (sources in rank order within one
// expert); `offsets` [El+1] are the experts' row ranges in that order.
struct Regroup {
  at::Tensor order;    // [R] int64: received row at each grouped position
  at::Tensor offsets;  // [El+1] int64 CPU
};

Regroup regroup_by_expert(const at::Tensor& counts, int world, int64_t local_experts) {
  const auto c = counts.accessor<int64_t, 1>();  // [world*El]: c[s*El+e] rows from rank s for local expert e
  std::vector<int64_t> source_start(world + 1, 0);
  for (int s = 0; s < world; ++s) {
    int64_t rows = 0;
    for (int64_t e = 0; e < local_experts; ++e) rows += c[s * local_experts + e];
    source_start[s + 1] = source_start[s] + rows;
  }
  Regroup g;
  g.order = at::empty({source_start[world]}, at::kLong);
  g.offsets = at::empty({local_experts + 1}, at::kLong);
  int64_t* order = g.order.data_ptr<int64_t>();
  int64_t* offsets = g.offsets.data_ptr<int64_t>();
  std::vector<int64_t> next(source_start.begin(), source_start.end() - 1);  // per source: its next row
  int64_t at = 0;
  offsets[0] = 0;
  for (int64_t e = 0; e < local_experts; ++e) {
    for (int s = 0; s < world; ++s) {
      for (int64_t i = 0; i < c[s * local_experts + e]; ++i) order[at++] = next[s]++;
    }
    offsets[e + 1] = at;
  }
  return g;
}

}  // namespace

at::Tensor sharded_expert_ffn(const at::Tensor& rows, const at::Tensor& offsets, const at::Tensor& w1,
                              const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2,
                              const std::shared_ptr<dist::Group>& group) {
  const int world = group->world_size();
  const int64_t E = offsets.size(0) - 1, El = w1.size(0);
  TORCH_CHECK(El * world == E, "expert parallelism over ", world, " ranks needs ", E, "/", world,
              " experts on each rank, but this rank holds ", El);
  const at::Tensor counts = (offsets.narrow(0, 1, E) - offsets.narrow(0, 0, E)).contiguous();
  // The counts first: each rank learns how many rows every peer sends to each of its experts.
  const std::vector<int64_t> per_rank(world, El);
  const at::Tensor incoming = group->all_to_all(counts, per_rank, per_rank, "the routed row counts per expert");
  std::vector<int64_t> send(world, 0), recv(world, 0);
  const auto c_out = counts.accessor<int64_t, 1>();
  const auto c_in = incoming.accessor<int64_t, 1>();
  for (int r = 0; r < world; ++r) {
    for (int64_t e = 0; e < El; ++e) {
      send[r] += c_out[r * El + e];
      recv[r] += c_in[r * El + e];
    }
  }
  const at::Tensor received = dist::exchange_rows(rows, send, recv, group, "the routed inputs");
  const Regroup g = regroup_by_expert(incoming, world, El);
  const at::Tensor grouped = received.index_select(0, g.order);
  const at::Tensor out = ops::expert_ffn(grouped, g.offsets, w1, b1, w2, b2);
  // Back to the received order (the inverse permutation), then to the senders.
  const at::Tensor inverse = at::empty_like(g.order).index_put_({g.order}, at::arange(g.order.size(0), at::kLong));
  return dist::exchange_rows(out.index_select(0, inverse), recv, send, group, "the expert outputs");
}

at::Tensor slice_experts(const at::Tensor& stacked, int rank, int world) {
  const int64_t E = stacked.size(0);
  TORCH_CHECK_VALUE(E % world == 0, "expert parallelism needs numExperts divisible by the world size: ", E,
                    " experts over ", world, " ranks");
  const int64_t per = E / world;
  return stacked.narrow(0, rank * per, per).clone();
}

at::Tensor gather_experts(const at::Tensor& slice, dist::Group& group, const std::string& what) {
  const at::Tensor all = group.all_gather(slice.contiguous(), what);  // [W, E/W, ...]
  std::vector<int64_t> shape(slice.sizes().begin(), slice.sizes().end());
  shape[0] *= group.world_size();
  return all.reshape(shape);
}

}  // namespace moe::model
