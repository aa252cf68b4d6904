// The differentiable all-to-all of expert parallelism: rows travel to the ranks that own their experts,
// and their gradients travel back the same way (backward is the all-to-all with the counts swapped).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "group.h"

namespace moe::dist {

// rows [N,H]: the first send_counts[0] rows go to rank 0, the next send_counts[1] to rank 1, ...; returns
// [sum(recv_counts),H], recv_counts[r] rows from rank r in rank order. Autograd records the exchange
// (when rows require grad), so a loss on the received rows sends its gradient back to the senders.
at::Tensor exchange_rows(const at::Tensor& rows, const std::vector<int64_t>& send_counts,
                         const std::vector<int64_t>& recv_counts, const std::shared_ptr<Group>& group,
                         const std::string& what);

}  // namespace moe::dist
