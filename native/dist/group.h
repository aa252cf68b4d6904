// A process group: the few collectives training needs, over libtorch's c10d (Gloo). The interface keeps
// c10d's headers (and Gloo's) out of the model code: only group_gloo.cpp includes them, and a build
// without them links group_stub.cpp instead.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace moe::dist {

// A collective or the rendezvous failed (a rank died, hung, or never came). The message names the
// operation, what it carried, this rank and the world size; JS sees code ERR_TORCH_MOE_DISTRIBUTED.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GroupOptions {
  std::string master_addr = "127.0.0.1";
  int port = 29500;
  int rank = 0;
  int world_size = 1;
  std::chrono::milliseconds timeout{120000};  // the rendezvous and every collective
  std::string backend = "gloo";
};

// A collective in flight; wait() blocks until it is done and throws DistributedError if it failed.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

// What this rank has handed to the collectives so far (payload bytes, not the backend's wire bytes): for
// a ring all-reduce each rank sends about 2(W-1)/W times its payload.
struct Traffic {
  int64_t collectives = 0;
  int64_t all_reduce_bytes = 0;   // tensors summed (gradients, expert counts, metrics)
  int64_t all_to_all_bytes = 0;   // rows sent to other ranks (expert parallelism)
  int64_t other_bytes = 0;        // broadcasts and all-gathers (start and end of a train call)
};

class Group {
 public:
  virtual ~Group() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual const std::string& backend() const = 0;

  // Sums `tensor` (contiguous) over the ranks, in place. `what` names it in errors.
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async(at::Tensor tensor, const std::string& what) = 0;
  void all_reduce_sum(const at::Tensor& tensor, const std::string& what) { all_reduce_sum_async(tensor, what)->wait(); }
  // Copies root's `tensor` (contiguous) into every rank's, in place.
  virtual void broadcast(const at::Tensor& tensor, int root, const std::string& what) = 0;
  // [world, ...]: every rank's `tensor` (same shape on all ranks), in rank order.
  virtual at::Tensor all_gather(const at::Tensor& tensor, const std::string& what) = 0;
  // Rows of `input` go to the ranks in order, send_counts[r] rows to rank r; returns the rows received,
  // recv_counts[r] from rank r, in rank order. Every rank must pass counts that match its peers'.
  virtual at::Tensor all_to_all(const at::Tensor& input, const std::vector<int64_t>& send_counts,
                                const std::vector<int64_t>& recv_counts, const std::string& what) = 0;

  Traffic traffic() const;

 protected:
  // Called by the backends as each collective starts.
  void count(int64_t Traffic::*field, int64_t bytes);

 private:
  mutable std::mutex traffic_mutex_;
  Traffic traffic_;
};

// Joins the group: blocks until all world_size ranks have met at master_addr:port (rank 0 serves the
// store there) or the timeout passed. Throws DistributedError saying what went wrong.
std::shared_ptr<Group> create_group(const GroupOptions& options);
// False when this build has no c10d backend (create_group then throws).
bool distributed_built();

// The process's group, set by initDistributed from JS (nullptr: none).
std::shared_ptr<Group> default_group();
void set_default_group(std::shared_ptr<Group> group);
// Empties the default slot and hands back what it held, so that the caller chooses the thread on which
// its last reference (and with it Gloo's teardown) is released.
std::shared_ptr<Group> take_default_group();

// "distributed <op> of <what> failed on rank R of W (<backend>): <reason>" plus a hint for timeouts
// and vanished peers: shared by the backends so their errors read alike.
std::string collective_error(const Group& group, const std::string& op, const std::string& what,
                             const std::string& reason, std::chrono::milliseconds timeout);

}  // namespace moe::dist
