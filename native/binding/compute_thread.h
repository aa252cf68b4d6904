// The one thread per process that runs all libtorch work of the addon: training and inference jobs.
// Why one: libgomp slows every OpenMP team down once several threads have run parallel regions (a libuv
// pool thread that ran an inference leaves its idle team behind, and training at 2 threads then runs ~3x
// slower; bench/omp_master_threads.py reproduces it in plain PyTorch). One master thread also makes the
// thread count of setNumThreads apply to all work. Short jobs (inference) run between the batches of a
// running training job, so an evaluate of another model waits at most one batch.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace moe::binding {

class ComputeThread {
 public:
  enum class JobKind { kShort, kLong };

  static ComputeThread& instance();  // started on first use, lives until the process ends

  void post(JobKind kind, std::function<void()> job);
  // From a long job on the compute thread: runs the short jobs queued now (training calls it per batch).
  void run_short_jobs();
  // Intra-op threads for the jobs that start after this call (applied on the compute thread).
  void set_num_threads(int n);
  int num_threads() const;

 private:
  ComputeThread();
  void loop();
  void apply_thread_count();
  bool pop(std::deque<std::function<void()>>& queue, std::function<void()>& job);

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> short_jobs_, long_jobs_;
  int requested_threads_;
  int applied_threads_ = 0;  // compute thread only
};

}  // namespace moe::binding
