#include "pipeline/key_locks.h"

#include <algorithm>

namespace backbone::pipeline {

KeyLocks::Guard::Guard(KeyLocks& locks, std::vector<std::string> keys)
    : locks_(locks), keys_(std::move(keys)) {
  std::sort(keys_.begin(), keys_.end());
  keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
  std::unique_lock lk(locks_.mu_);
  locks_.released_.wait(lk, [&] {
    return std::none_of(keys_.begin(), keys_.end(),
                        [&](const std::string& k) { return locks_.held_.count(k) > 0; });
  });
  locks_.held_.insert(keys_.begin(), keys_.end());
}

KeyLocks::Guard::~Guard() {
  {
    std::lock_guard lk(locks_.mu_);
    for (const std::string& k : keys_) locks_.held_.erase(k);
  }
  locks_.released_.notify_all();
}

}  // namespace backbone::pipeline
