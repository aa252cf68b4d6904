#include "exchange_rows.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/autograd.h>

namespace moe::dist {
namespace {

// The backward of one exchange: the gradients of the received rows go back to their senders. Every rank
// runs it at the same point of its (identical) backward graph, so the collectives match across ranks.
struct ExchangeRowsBackward : torch::autograd::Node {
  std::shared_ptr<Group> group;
  std::vector<int64_t> send_counts, recv_counts;  // of the forward exchange
  std::string what;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    at::Tensor grad = grads[0];
    if (!grad.defined()) {
      int64_t received = 0;
      for (int64_t c : recv_counts) received += c;
      std::vector<int64_t> shape{received};
      shape.insert(shape.end(), grad_shape.begin(), grad_shape.end());
      grad = at::zeros(shape, grad_options);  // still exchanged: the peers wait for this collective
    }
    return {group->all_to_all(grad, recv_counts, send_counts, "the gradients of " + what)};
  }
  std::vector<int64_t> grad_shape;  // a row's shape
  at::TensorOptions grad_options;
  std::string name() const override { return "moe::dist::ExchangeRowsBackward"; }
};

}  // namespace

at::Tensor exchange_rows(const at::Tensor& rows, const std::vector<int64_t>& send_counts,
                         const std::vector<int64_t>& recv_counts, const std::shared_ptr<Group>& group,
                         const std::string& what) {
  at::Tensor received;
  {
    at::AutoDispatchBelowADInplaceOrView no_autograd;  // the collective itself is not recorded
    received = group->all_to_all(rows.detach(), send_counts, recv_counts, what);
  }
  if (rows.requires_grad() && torch::autograd::GradMode::is_enabled()) {
    auto node = std::shared_ptr<ExchangeRowsBackward>(new ExchangeRowsBackward(), torch::autograd::deleteNode);
    node->group = group;
    node->send_counts = send_counts;
    node->recv_counts = recv_counts;
    node->what = what;
    node->grad_shape.assign(rows.sizes().begin() + 1, rows.sizes().end());
    node->grad_options = rows.options();
    node->set_next_edges(torch::autograd::collect_next_edges(rows));
    torch::autograd::set_history(received, node);
  }
  return received;
}

}  // namespace moe::dist
