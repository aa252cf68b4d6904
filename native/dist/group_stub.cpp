// Linked when the build found no c10d/Gloo headers: distributed training is reported as missing.
#include "group.h"

namespace moe::dist {

std::shared_ptr<Group> create_group(const GroupOptions&) {
  throw DistributedError("this build of torch-moe has no distributed training: the Gloo headers were missing "
                         "when it was compiled (Debian/Ubuntu: apt-get install libgloo-dev, then rebuild)");
}

bool distributed_built() { return false; }

}  // namespace moe::dist
