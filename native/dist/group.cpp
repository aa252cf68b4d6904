#include "group.h"

#include <mutex>
#include <utility>

namespace moe::dist {
namespace {
std::mutex default_mutex;
std::shared_ptr<Group> default_group_ptr;

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }
}  // namespace

std::shared_ptr<Group> default_group() {
  std::lock_guard<std::mutex> lock(default_mutex);
  return default_group_ptr;
}

void set_default_group(std::shared_ptr<Group> group) {
  std::lock_guard<std::mutex> lock(default_mutex);
  default_group_ptr = std::move(group);
}

std::shared_ptr<Group> take_default_group() {
  std::lock_guard<std::mutex> lock(default_mutex);
  return std::exchange(default_group_ptr, nullptr);
}

Traffic Group::traffic() const {
  std::lock_guard<std::mutex> lock(traffic_mutex_);
  return traffic_;
}

void Group::count(int64_t Traffic::*field, int64_t bytes) {
  std::lock_guard<std::mutex> lock(traffic_mutex_);
  ++traffic_.collectives;
  traffic_.*field += bytes;
}

std::string collective_error(const Group& group, const std::string& op, const std::string& what,
                             const std::string& reason, std::chrono::milliseconds timeout) {
  std::string message = "distributed " + op + " of " + what + " failed on rank " + std::to_string(group.rank()) +
                        " of " + std::to_string(group.world_size()) + " (" + group.backend() + "): " + reason;
  if (contains(reason, "imed out") || contains(reason, "imeout")) {
    message += " (another rank did not take part within the timeout (" + std::to_string(timeout.count()) +
               " ms): it hung, stopped early, or ran a different schedule; the launcher's log names it)";
  } else if (contains(reason, "reset by peer") || contains(reason, "closed") || contains(reason, "Broken pipe")) {
    message += " (another rank's process ended: look for its error above)";
  }
  return message;
}

}  // namespace moe::dist
