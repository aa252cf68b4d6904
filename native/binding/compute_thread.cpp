#include "compute_thread.h"

#include <ATen/Parallel.h>

#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace moe::binding {
namespace {

// The machine's usable cores (the process's CPU affinity on Linux): the default thread count.
int default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace

ComputeThread& ComputeThread::instance() {
  // Never destroyed: the thread is detached and may still be waiting for work while the process exits.
  static ComputeThread* const thread = new ComputeThread();
  return *thread;
}

ComputeThread::ComputeThread() : requested_threads_(default_num_threads()) {
  std::thread([this] { loop(); }).detach();
}

void ComputeThread::post(JobKind kind, std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    (kind == JobKind::kShort ? short_jobs_ : long_jobs_).push_back(std::move(job));
  }
  wake_.notify_one();
}

bool ComputeThread::pop(std::deque<std::function<void()>>& queue, std::function<void()>& job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (queue.empty()) return false;
  job = std::move(queue.front());
  queue.pop_front();
  return true;
}

void ComputeThread::run_short_jobs() {
  const int long_job_threads = applied_threads_;  // a new setNumThreads applies from the next job on
  std::function<void()> job;
  while (pop(short_jobs_, job)) {
    apply_thread_count();
    job();  // jobs catch their own errors
  }
  if (applied_threads_ != long_job_threads) {
    at::set_num_threads(long_job_threads);
    applied_threads_ = long_job_threads;
  }
}

void ComputeThread::set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(mutex_);
  requested_threads_ = n;
}

int ComputeThread::num_threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requested_threads_;
}

void ComputeThread::apply_thread_count() {
  const int n = num_threads();
  if (n != applied_threads_) {
    at::set_num_threads(n);  // this thread's OpenMP team size, and libtorch's default for new threads
    applied_threads_ = n;
  }
}

void ComputeThread::loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return !short_jobs_.empty() || !long_jobs_.empty(); });
      auto& queue = short_jobs_.empty() ? long_jobs_ : short_jobs_;  // inference first: it is short
      job = std::move(queue.front());
      queue.pop_front();
    }
    apply_thread_count();
    job();
  }
}

}  // namespace moe::binding
