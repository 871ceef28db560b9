// GroupCommit: lets concurrent callers share one expensive commit (one transaction, one sync).
// A caller queues its request and waits; the first caller that finds no commit running becomes
// the leader, takes every queued request, and runs them together; then the next leader takes
// what queued meanwhile. Under load, a commit's cost is shared by everyone who arrived during
// the previous one; alone, a caller runs at once.
//
// Thread-safety: thread-safe. `run` is called on the leader's thread, never twice at once.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

namespace backbone {

template <typename Request>
class GroupCommit {
 public:
  // Runs `request` in a group: returns after some leader called `run` on a group that held it.
  // `run` gets the group in arrival order and must fill in every request's outcome.
  void submit(Request& request, const std::function<void(std::vector<Request*>&)>& run) {
    Slot mine{&request, false};
    std::unique_lock lk(mu_);
    queue_.push_back(&mine);
    while (!mine.done) {
      if (leading_) {
        cv_.wait(lk);
        continue;
      }
      leading_ = true;
      std::vector<Slot*> slots;
      slots.swap(queue_);
      lk.unlock();
      std::vector<Request*> group;
      group.reserve(slots.size());
      for (Slot* s : slots) group.push_back(s->request);
      run(group);
      lk.lock();
      for (Slot* s : slots) s->done = true;
      leading_ = false;
      cv_.notify_all();
    }
  }

  // Requests queued behind the running group.
  size_t queued() {
    std::lock_guard lk(mu_);
    return queue_.size();
  }

 private:
  struct Slot {
    Request* request;
    bool done;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot*> queue_;  // GUARDED_BY(mu_)
  bool leading_ = false;      // GUARDED_BY(mu_)
};

}  // namespace backbone
