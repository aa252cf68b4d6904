// The Group over c10d: a TCPStore served by rank 0 for the rendezvous, and ProcessGroupGloo for the
// collectives (both compiled into libtorch_cpu). Every c10d/Gloo error is rethrown as DistributedError
// with the operation, the rank and a hint at the likely cause.
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <exception>
#include <utility>

#include "group.h"

namespace moe::dist {
namespace {

// The message of the exception in flight, without c10's backtrace.
std::string current_reason() {
  try {
    throw;
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

// GLOO_SOCKET_IFNAME (as in PyTorch) picks the network interface; a loopback master means a one-machine
// job, which stays on loopback; otherwise the address this machine's hostname resolves to.
std::shared_ptr<::gloo::transport::Device> make_device(const std::string& master_addr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  if (is_loopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// Why a rendezvous failed, in the user's terms, from the c10d message.
std::string rendezvous_hint(const GroupOptions& o, const std::string& reason, bool store_ready) {
  const std::string ms = std::to_string(o.timeout.count()) + " ms";
  if (contains(reason, "already in use") || contains(reason, "failed to bind")) {
    return "the port is in use (another job, or a rank left from an earlier one?): pick a free one with "
           "--master-port or MASTER_PORT";
  }
  if (!store_ready) {
    return "nobody answered at the master address within " + ms + ": rank 0 serves the rendezvous there, so "
           "start it, or check MASTER_ADDR and MASTER_PORT";
  }
  if (contains(reason, "imeout") || contains(reason, "imed out")) {
    return "not all " + std::to_string(o.world_size) + " ranks joined within " + ms + ": start every rank " +
           "0.." + std::to_string(o.world_size - 1) + " with the same WORLD_SIZE, MASTER_ADDR and MASTER_PORT";
  }
  return "the ranks could not connect to each other (set GLOO_SOCKET_IFNAME to the network interface they share)";
}

class GlooGroup;

class GlooPending : public PendingCollective {
 public:
  GlooPending(const GlooGroup& group, c10::intrusive_ptr<c10d::Work> work, std::string op, std::string what)
      : group_(group), work_(std::move(work)), op_(std::move(op)), what_(std::move(what)) {}
  void wait() override;

 private:
  const GlooGroup& group_;
  c10::intrusive_ptr<c10d::Work> work_;
  std::string op_, what_;
};

class GlooGroup : public Group {
 public:
  explicit GlooGroup(const GroupOptions& o) : options_(o) {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(o.port);
    store_options.isServer = o.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(o.world_size);
    store_options.waitWorkers = false;  // the process group's own connect waits (and says who is missing)
    store_options.timeout = o.timeout;
    bool store_ready = false;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
      store_ready = true;
      auto pg_options = c10d::ProcessGroupGloo::Options::create(o.timeout);
      pg_options->devices.push_back(make_device(o.master_addr));
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, o.rank, o.world_size, pg_options);
    } catch (...) {
      const std::string reason = current_reason();
      throw DistributedError("distributed rendezvous of rank " + std::to_string(o.rank) + " of " +
                             std::to_string(o.world_size) + " at " + o.master_addr + ":" + std::to_string(o.port) +
                             " failed: " + rendezvous_hint(o, reason, store_ready) + " (" + reason + ")");
    }
  }

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  const std::string& backend() const override { return options_.backend; }
  std::chrono::milliseconds timeout() const { return options_.timeout; }

  std::unique_ptr<PendingCollective> all_reduce_sum_async(at::Tensor tensor, const std::string& what) override {
    require_contiguous(tensor, "all-reduce", what);
    count(&Traffic::all_reduce_bytes, tensor.nbytes());
    return launch("all-reduce", what, [&] {
      std::vector<at::Tensor> tensors{tensor};
      return pg_->allreduce(tensors);
    });
  }

  void broadcast(const at::Tensor& tensor, int root, const std::string& what) override {
    require_contiguous(tensor, "broadcast", what);
    count(&Traffic::other_bytes, tensor.nbytes());
    launch("broadcast", what, [&] {
      std::vector<at::Tensor> tensors{tensor};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      return pg_->broadcast(tensors, opts);
    })->wait();
  }

  at::Tensor all_gather(const at::Tensor& tensor, const std::string& what) override {
    at::Tensor input = tensor.contiguous();
    std::vector<int64_t> shape{world_size()};
    shape.insert(shape.end(), input.sizes().begin(), input.sizes().end());
    at::Tensor out = at::empty(shape, input.options());
    count(&Traffic::other_bytes, input.nbytes());
    launch("all-gather", what, [&] {
      std::vector<std::vector<at::Tensor>> outputs(1);
      for (int r = 0; r < world_size(); ++r) outputs[0].push_back(out[r]);
      std::vector<at::Tensor> inputs{input};
      return pg_->allgather(outputs, inputs);
    })->wait();
    return out;
  }

  at::Tensor all_to_all(const at::Tensor& input, const std::vector<int64_t>& send_counts,
                        const std::vector<int64_t>& recv_counts, const std::string& what) override {
    const auto world = static_cast<size_t>(world_size());
    TORCH_CHECK(send_counts.size() == world && recv_counts.size() == world, "all_to_all needs one count per rank");
    int64_t received = 0;
    for (int64_t c : recv_counts) received += c;
    std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
    shape[0] = received;
    at::Tensor in = input.contiguous();
    at::Tensor out = at::empty(shape, in.options());
    const int64_t row_bytes = in.size(0) > 0 ? static_cast<int64_t>(in.nbytes()) / in.size(0) : 0;
    int64_t sent = 0;
    for (size_t r = 0; r < world; ++r) sent += static_cast<int>(r) == rank() ? 0 : send_counts[r] * row_bytes;
    count(&Traffic::all_to_all_bytes, sent);
    launch("all-to-all", what, [&] {
      std::vector<int64_t> out_counts = recv_counts, in_counts = send_counts;  // c10d takes them by reference
      return pg_->alltoall_base(out, in, out_counts, in_counts);
    })->wait();
    return out;
  }

 private:
  void require_contiguous(const at::Tensor& t, const char* op, const std::string& what) const {
    TORCH_CHECK(t.is_contiguous(), "distributed ", op, " of ", what, " needs a contiguous tensor");
  }

  // Starts a collective; an error at launch reads like one at wait().
  template <class Start>
  std::unique_ptr<PendingCollective> launch(const std::string& op, const std::string& what, Start start) {
    try {
      return std::make_unique<GlooPending>(*this, start(), op, what);
    } catch (...) {
      throw DistributedError(collective_error(*this, op, what, current_reason(), options_.timeout));
    }
  }

  GroupOptions options_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
};

void GlooPending::wait() {
  try {
    work_->wait();
  } catch (...) {
    throw DistributedError(collective_error(group_, op_, what_, current_reason(), group_.timeout()));
  }
}

}  // namespace

std::shared_ptr<Group> create_group(const GroupOptions& options) {
  if (options.backend != "gloo") {
    throw DistributedError("distributed backend '" + options.backend + "' is not in this build; use 'gloo'");
  }
  return std::make_shared<GlooGroup>(options);
}

bool distributed_built() { return true; }

}  // namespace moe::dist
