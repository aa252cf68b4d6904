// Data-parallel gradient sums that overlap backward: the parameters' gradients are copied into buckets as
// autograd produces them (per-parameter hooks, so backward order: last layer first), and each bucket's
// all-reduce starts as soon as it is full, while backward goes on with the layers before it. Buckets are
// 25 MiB, PyTorch DDP's default: over Gloo each collective costs milliseconds of fixed latency on small
// machines, so for models of a few MiB fewer collectives beat more overlap (bench/distributed.mjs).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "group.h"

namespace moe::dist {

class GradBuckets {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;

  // Registers a hook on every parameter with summed[i] true (removed again by the destructor); the
  // others (expert-parallel experts: their gradients are already global) keep their own gradients.
  // overlap false: buckets are sent only by finish() (for a backward that runs collectives of its own).
  GradBuckets(const std::vector<at::Tensor>& params, std::vector<bool> summed, std::shared_ptr<Group> group,
              bool overlap = true, int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradBuckets();
  GradBuckets(const GradBuckets&) = delete;
  GradBuckets& operator=(const GradBuckets&) = delete;

  // Before each backward: this rank's stop request rides with the step's last bucket; `label` names the
  // step in errors ("epoch 2, step 31").
  void begin_step(bool stop_requested, std::string label);
  // After backward: sums what is still unsent (parameters without a gradient count as zero), waits for
  // every bucket, and returns whether any rank asked to stop.
  bool finish();
  // Parameter i's gradient summed over the ranks, or its own for one not summed (valid after finish()).
  at::Tensor grad(size_t i) const;
  size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Slot {
    size_t bucket = 0;
    at::Tensor view;  // the parameter's region of its bucket, in the parameter's shape
    bool filled = false;
  };
  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> members;  // parameter indices
    size_t filled = 0;
    std::unique_ptr<PendingCollective> pending;
  };

  void on_grad(size_t i, const at::Tensor& grad);
  void launch_ready_locked();  // buckets start in index order on every rank, so their collectives match
  void launch_locked(size_t b);

  std::vector<at::Tensor> params_;
  std::vector<bool> summed_;
  bool overlap_;
  std::vector<unsigned> hook_ids_;
  std::shared_ptr<Group> group_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  std::string label_;
  std::mutex mutex_;  // hooks may run on autograd's worker threads
};

}  // namespace moe::dist
