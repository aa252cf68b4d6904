#include "grad_buckets.h"

#include <torch/autograd.h>

namespace moe::dist {

GradBuckets::GradBuckets(const std::vector<at::Tensor>& params, std::vector<bool> summed,
                         std::shared_ptr<Group> group, bool overlap, int64_t bucket_bytes)
    : params_(params), summed_(std::move(summed)), overlap_(overlap), group_(std::move(group)),
      slots_(params.size()) {
  TORCH_CHECK(!params.empty() && summed_.size() == params.size(), "GradBuckets needs one flag per parameter");
  // Reverse order: backward produces the last layers' gradients first.
  std::vector<std::vector<size_t>> members(1);
  int64_t bytes = 0;
  for (size_t j = params.size(); j-- > 0;) {
    if (!summed_[j]) continue;
    if (bytes >= bucket_bytes) {
      members.emplace_back();
      bytes = 0;
    }
    members.back().push_back(j);
    bytes += params[j].numel() * static_cast<int64_t>(params[j].element_size());
  }
  const auto options = params.front().options();
  buckets_.resize(members.size());
  for (size_t b = 0; b < members.size(); ++b) {
    const bool last = b + 1 == members.size();
    int64_t total = last ? 1 : 0;  // the last bucket's extra element is the stop flag
    for (size_t j : members[b]) total += params[j].numel();
    buckets_[b].flat = at::zeros({total}, options);
    buckets_[b].members = members[b];
    int64_t offset = 0;
    for (size_t j : members[b]) {
      slots_[j].bucket = b;
      slots_[j].view = buckets_[b].flat.narrow(0, offset, params[j].numel()).view(params[j].sizes());
      offset += params[j].numel();
    }
  }
  for (size_t j = 0; j < params_.size(); ++j) {
    if (summed_[j]) hook_ids_.push_back(params_[j].register_hook([this, j](const at::Tensor& g) { on_grad(j, g); }));
  }
}

GradBuckets::~GradBuckets() {
  size_t h = 0;
  for (size_t j = 0; j < params_.size(); ++j) {
    if (summed_[j]) params_[j].remove_hook(hook_ids_[h++]);
  }
}

at::Tensor GradBuckets::grad(size_t i) const {
  if (summed_[i]) return slots_[i].view;
  const at::Tensor& g = params_[i].grad();
  return g.defined() ? g : at::zeros_like(params_[i]);
}

void GradBuckets::begin_step(bool stop_requested, std::string label) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Bucket& b : buckets_) {
    b.filled = 0;
    b.pending.reset();
  }
  for (Slot& slot : slots_) slot.filled = false;
  next_launch_ = 0;
  label_ = std::move(label);
  buckets_.back().flat[-1].fill_(stop_requested ? 1.0 : 0.0);
}

void GradBuckets::on_grad(size_t i, const at::Tensor& grad) {
  if (!grad.defined()) return;  // no gradient: finish() sends zeros for it
  torch::NoGradGuard no_grad;
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& s = slots_[i];
  Bucket& b = buckets_[s.bucket];
  TORCH_CHECK(!b.pending, "a gradient of parameter ", i, " arrived after its bucket was sent");
  if (s.filled) {  // (the engine sums a leaf's gradients before its hook; this is only a guard)
    s.view.add_(grad);
    return;
  }
  s.view.copy_(grad);
  s.filled = true;
  if (++b.filled == b.members.size() && overlap_) launch_ready_locked();
}

void GradBuckets::launch_ready_locked() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].filled == buckets_[next_launch_].members.size()) {
    launch_locked(next_launch_++);
  }
}

void GradBuckets::launch_locked(size_t b) {
  Bucket& bucket = buckets_[b];
  for (size_t j : bucket.members) {
    if (!slots_[j].filled) slots_[j].view.zero_();  // no gradient this step: contributes zero
  }
  bucket.pending = group_->all_reduce_sum_async(
      bucket.flat, "the gradients (bucket " + std::to_string(b + 1) + " of " + std::to_string(buckets_.size()) +
                       ") at " + label_);
}

bool GradBuckets::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  while (next_launch_ < buckets_.size()) launch_locked(next_launch_++);
  for (Bucket& b : buckets_) b.pending->wait();
  return buckets_.back().flat[-1].item<double>() > 0.0;
}

}  // namespace moe::dist
