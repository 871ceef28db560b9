// KeyLocks: exclusive hold of a set of keys at once. A caller blocks until none of its keys is
// held by another, nor wanted by a caller that came before it and still waits, then holds them
// all (all or nothing, so two callers never deadlock; first come, first served where their keys
// meet, so that a caller with many keys is not starved by a stream of callers that each take a
// few of them). The merge and retry stages hold the ordering keys of the records they work on:
// a retry pull of 500 keys used to wait until the merge stage's backlog was gone.
//
// Thread-safety: thread-safe.
#pragma once

#include <condition_variable>
#include <list>
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

  // What the locks look like now (for tests): how many callers wait, whether a key is held.
  size_t waiting();
  bool held(const std::string& key);

 private:
  std::mutex mu_;
  std::condition_variable released_;
  std::unordered_set<std::string> held_;  // GUARDED_BY(mu_)
  // The sorted keys of each caller still waiting, in order of arrival. GUARDED_BY(mu_)
  std::list<const std::vector<std::string>*> waiting_;
};

}  // namespace backbone::pipeline
