#include "pipeline/key_locks.h"

#include <algorithm>

namespace backbone::pipeline {
namespace {

// Whether two sorted key lists share a key.
bool meet(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (auto i = a.begin(), j = b.begin(); i != a.end() && j != b.end();) {
    if (*i < *j) {
      ++i;
    } else if (*j < *i) {
      ++j;
    } else {
      return true;
    }
  }
  return false;
}

}  // namespace

KeyLocks::Guard::Guard(KeyLocks& locks, std::vector<std::string> keys)
    : locks_(locks), keys_(std::move(keys)) {
  std::sort(keys_.begin(), keys_.end());
  keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
  std::unique_lock lk(locks_.mu_);
  const auto me = locks_.waiting_.insert(locks_.waiting_.end(), &keys_);
  locks_.released_.wait(lk, [&] {
    for (auto it = locks_.waiting_.begin(); it != me; ++it) {
      if (meet(**it, keys_)) return false;
    }
    return std::none_of(keys_.begin(), keys_.end(),
                        [&](const std::string& k) { return locks_.held_.count(k) > 0; });
  });
  locks_.waiting_.erase(me);
  locks_.held_.insert(keys_.begin(), keys_.end());
}

KeyLocks::Guard::~Guard() {
  {
    std::lock_guard lk(locks_.mu_);
    for (const std::string& k : keys_) locks_.held_.erase(k);
  }
  locks_.released_.notify_all();
}

size_t KeyLocks::waiting() {
  std::lock_guard lk(mu_);
  return waiting_.size();
}

bool KeyLocks::held(const std::string& key) {
  std::lock_guard lk(mu_);
  return held_.count(key) > 0;
}

}  // namespace backbone::pipeline
