// KeyLocks: exclusive hold of a set of keys at once. A caller blocks until none of its keys is
// held by another, then holds them all (all or nothing, so two callers never deadlock). The
// merge and retry stages hold the ordering keys of the records they work on.
//
// Thread-safety: thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace backbone::pipeline {

class KeyLocks {
 public:
  // Holds `keys` (duplicates allowed) until the guard is destroyed.
  class Guard {
   public:
    Guard(KeyLocks& locks, std::vector<std::string> keys);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    KeyLocks& locks_;
    std::vector<std::string> keys_;
  };

 private:
  std::mutex mu_;
  std::condition_variable released_;
  std::unordered_set<std::string> held_;  // GUARDED_BY(mu_)
};

}  // namespace backbone::pipeline
