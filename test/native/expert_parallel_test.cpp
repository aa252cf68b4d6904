// Expert parallelism against the single-process op: two ranks (threads of this process, each with its own
// Gloo group on loopback) run sharded_expert_ffn on their own rows with half the experts each; outputs,
// input gradients and expert-weight gradients must equal ops::expert_ffn with all experts in one process.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <exception>
#include <thread>

#include "../../native/dist/group.h"
#include "../../native/model/expert_parallel.h"
#include "../../native/ops/dispatch.h"
#include "../../native/ops/expert_ffn.h"
#include "testing.h"

using namespace moe;

namespace {

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

struct RankInput {
  torch::Tensor rows, offsets, upstream;  // expert-sorted rows, [E+1] offsets, d loss / d out
};

struct Grads {
  torch::Tensor out, rows, w1, b1, w2, b2;
};

// loss = sum(out * upstream); gradients by autograd.
Grads run(const RankInput& in, const std::vector<torch::Tensor>& weights,
          const std::function<torch::Tensor(const torch::Tensor&, const std::vector<torch::Tensor>&)>& ffn) {
  Grads g;
  torch::Tensor rows = in.rows.detach().clone().requires_grad_(true);
  std::vector<torch::Tensor> w;
  for (const auto& t : weights) w.push_back(t.detach().clone().requires_grad_(true));
  g.out = ffn(rows, w);
  (g.out * in.upstream).sum().backward();
  g.rows = rows.grad();
  g.w1 = w[0].grad(), g.b1 = w[1].grad(), g.w2 = w[2].grad(), g.b2 = w[3].grad();
  return g;
}

void check_two_ranks(int64_t tokens0, int64_t tokens1) {
  const int W = 2;
  const int64_t E = 4, H = 6, F = 5, k = 2;
  torch::manual_seed(tokens0 * 31 + tokens1);
  const std::vector<torch::Tensor> full = {torch::randn({E, F, H}), torch::randn({E, F}), torch::randn({E, H, F}),
                                           torch::randn({E, H})};
  std::vector<RankInput> inputs;
  for (int64_t T : {tokens0, tokens1}) {
    const ops::DispatchPlan plan = ops::make_dispatch_plan(testing::random_choices(T, E, k), E);
    const torch::Tensor rows = ops::permute_tokens(torch::randn({T, H}), plan);
    inputs.push_back({rows, plan.offsets, torch::randn({rows.size(0), H})});
  }
  // The reference: all experts here; each rank's loss separately (the weight gradients then add up).
  std::vector<Grads> want;
  for (const RankInput& in : inputs) {
    want.push_back(run(in, full, [&](const torch::Tensor& rows, const std::vector<torch::Tensor>& w) {
      return ops::expert_ffn(rows, in.offsets, w[0], w[1], w[2], w[3]);
    }));
  }
  std::vector<Grads> got(W);
  std::vector<std::exception_ptr> errors(W);
  const int port = free_port();
  std::vector<std::thread> ranks;
  for (int r = 0; r < W; ++r) {
    ranks.emplace_back([&, r] {
      try {
        dist::GroupOptions o;
        o.port = port, o.rank = r, o.world_size = W, o.timeout = std::chrono::milliseconds(20000);
        const std::shared_ptr<dist::Group> group = dist::create_group(o);
        std::vector<torch::Tensor> mine;
        for (const auto& t : full) mine.push_back(model::slice_experts(t, r, W));
        got[r] = run(inputs[r], mine, [&](const torch::Tensor& rows, const std::vector<torch::Tensor>& w) {
          return model::sharded_expert_ffn(rows, inputs[r].offsets, w[0], w[1], w[2], w[3], group);
        });
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  const double atol = 1e-5, rtol = 1e-5;
  for (int r = 0; r < W; ++r) {
    const std::string rank = "rank " + std::to_string(r);
    testing::expect_close(got[r].out, want[r].out, atol, rtol, rank + " output");
    testing::expect_close(got[r].rows, want[r].rows, atol, rtol, rank + " input-row gradient");
    // Rank r's experts [2r, 2r+2) saw both ranks' rows: their gradients are the sum of both references.
    const auto both = [&](const torch::Tensor Grads::*field) {
      return model::slice_experts(want[0].*field + want[1].*field, r, W);
    };
    testing::expect_close(got[r].w1, both(&Grads::w1), atol, rtol, rank + " w1 gradient");
    testing::expect_close(got[r].b1, both(&Grads::b1), atol, rtol, rank + " b1 gradient");
    testing::expect_close(got[r].w2, both(&Grads::w2), atol, rtol, rank + " w2 gradient");
    testing::expect_close(got[r].b2, both(&Grads::b2), atol, rtol, rank + " b2 gradient");
  }
}

}  // namespace

MOE_TEST(sharded_expert_ffn_equals_all_experts_in_one_process_forward_and_backward) {
  if (!dist::distributed_built()) throw testing::Skipped("this build has no c10d (Gloo headers missing)");
  check_two_ranks(7, 5);
  check_two_ranks(6, 0);  // a rank without inputs still takes part in every exchange
}

MOE_TEST(slice_and_gather_experts_round_trip_and_reject_an_uneven_split) {
  const torch::Tensor w = torch::arange(24, torch::kFloat).view({4, 3, 2});
  testing::expect_equal(model::slice_experts(w, 1, 2), w.narrow(0, 2, 2), "rank 1's experts of 4 over 2 ranks");
  bool threw = false;
  try {
    model::slice_experts(w, 0, 3);
  } catch (const c10::Error& e) {
    threw = std::string(e.what()).find("divisible") != std::string::npos;
  }
  EXPECT_TRUE(threw, "4 experts over 3 ranks must be refused, naming divisibility");
}
