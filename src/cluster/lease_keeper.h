// LeaseKeeper: this process's membership of one environment's cluster, and the buckets it owns
// (doc/scale_out.md). Everything lives in the environment's store (EventStore::beat,
// change_leases), so processes find each other with nothing else to run:
//
//  - every tick is a heartbeat: the member's row's `beat` grows by one, and the tick reads every
//    member and lease back in the same transaction;
//  - another member is alive while its beat keeps changing: one whose beat has not changed for
//    `ttl_us` on this process's own clock (so clocks need not agree), or that says it is
//    leaving, is not;
//  - the live members, sorted by id, split the buckets evenly (the first count % live get one
//    more); each member claims free buckets (no owner, or an owner that is not alive) up to its
//    share and releases what it owns above it, each a compare-and-set on the bucket's epoch; so
//    a join or a leave moves only the buckets it must, and a bucket never has two owners;
//  - a process that could not beat for `ttl_us` drops its buckets itself; whether or not it
//    does, a commit under an epoch it lost is refused by the store (MergeCommit::fence).
//
// Thread-safety: thread-safe. Listeners are called on the ticking thread, outside the lock.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backbone/clock.h"
#include "backbone/event_store.h"
#include "backbone/metrics.h"

namespace backbone::cluster {

struct LeaseOptions {
  std::string member;           // this process's id, new at every start (new_member_id())
  std::string address;          // where it serves, for people and for forwarding
  uint32_t buckets = 64;        // recorded by the first process; later ones take the recorded count
  int64_t ttl_us = 10'000'000;  // a member silent this long is gone
  int64_t beat_interval_us = 0;  // 0: a quarter of the ttl, at most 1 s
  // Where to count (may be null), with label env=`env`:
  //   backbone_cluster_buckets_owned          gauge: the buckets this process owns
  //   backbone_cluster_rebalances_total       counter: ticks that gained or lost buckets
  //   backbone_cluster_takeover_seconds       histogram, per bucket taken: from when it was
  //     left (its owner's last heartbeat seen changing, or its release) to this claim
  Metrics* metrics = nullptr;
  std::string env;
};

// A member id: host name, process id and 32 random bits.
std::string new_member_id();

class LeaseKeeper {
 public:
  // Buckets gained and lost by one tick.
  using Listener = std::function<void(const std::vector<BucketLease>& gained,
                                      const std::vector<uint32_t>& lost)>;

  // Records the bucket count if none is (EventStore::init_buckets). `store` (as merge_worker)
  // and `clock` must outlive the keeper. Takes no bucket before the first tick.
  static Result<std::unique_ptr<LeaseKeeper>> open(EventStore& store, const Clock& clock,
                                                   LeaseOptions options);
  ~LeaseKeeper();

  const std::string& member() const { return o_.member; }
  // This member's key: 32 random bytes (hex) made at open, known only to this process; its
  // SHA-256 goes into the member's row, so that the others can tell a request that this member
  // forwards (Authorization: Bearer <key>) from anyone else's.
  const std::string& key() const { return key_; }
  // True when `key` is the key of `member`, a member of the last view read (a member that joined
  // since is known after the next tick).
  bool is_member_key(std::string_view member, std::string_view key) const;
  uint32_t buckets() const { return buckets_; }
  // The epoch this process owns `bucket` at, if it owns it.
  std::optional<uint64_t> epoch(uint32_t bucket) const;
  // The buckets owned here, by bucket.
  std::vector<BucketLease> owned() const;
  // The last view of the cluster read from the store, with what this process's tick then
  // claimed and released (their `changed_at` on this process's clock until the next read), and
  // its version, which grows whenever the members (but for their beats) or the leases change. Waits
  // up to `timeout_us` (real time) for a version above `after` first.
  struct VersionedView {
    ClusterView view;
    uint64_t version = 0;
  };
  VersionedView view(uint64_t after = 0, int64_t timeout_us = 0) const;
  void on_change(Listener listener);

  // One heartbeat and one step of rebalancing (for the thread, and for tests on a manual clock).
  Result<void> tick();
  // Says it is leaving and releases every bucket at once (SIGTERM), calls `released` (to tell
  // the others, while they still know this member), then forgets its row.
  Result<void> leave(const std::function<void()>& released = {});

  // Ticks every beat interval (real time) on a thread of its own, until stop().
  void start();
  void stop();
  // Makes the thread tick at once rather than at the next beat (another member left).
  void poke();

 private:
  LeaseKeeper(EventStore& store, const Clock& clock, LeaseOptions o, uint32_t buckets);
  struct Seen {
    uint64_t beat = 0;
    Timestamp since;  // when this process first saw that beat
  };
  // Applies a view: what it owns, what changes, and the store's answer. REQUIRES: tick_mu_.
  Result<void> step(const ClusterView& view);
  void set_owned(std::map<uint32_t, uint64_t> next);  // and tells the listeners
  void set_view(const ClusterView& view);             // and wakes those waiting for a change

  EventStore& store_;
  const Clock& clock_;
  const LeaseOptions o_;
  const uint32_t buckets_;
  const std::string key_, key_sha256_;

  std::mutex tick_mu_;                  // one tick at a time
  std::optional<Timestamp> last_beat_;  // GUARDED_BY(tick_mu_): the last heartbeat that held
  std::map<std::string, Seen> seen_;    // GUARDED_BY(tick_mu_)
  // When each bucket was first seen free (no owner) at its epoch. GUARDED_BY(tick_mu_)
  std::map<uint32_t, std::pair<uint64_t, Timestamp>> free_since_;
  bool leaving_ = false;  // GUARDED_BY(tick_mu_)

  mutable std::mutex mu_;
  std::map<uint32_t, uint64_t> owned_;            // GUARDED_BY(mu_): bucket -> epoch
  ClusterView view_;                              // GUARDED_BY(mu_)
  uint64_t view_version_ = 0;                     // GUARDED_BY(mu_)
  mutable std::condition_variable view_changed_;  // with mu_
  std::vector<Listener> listeners_;               // GUARDED_BY(mu_)

  std::mutex run_mu_;
  std::condition_variable wake_;  // with run_mu_: stop
  bool stopping_ = false;         // GUARDED_BY(run_mu_)
  bool poked_ = false;            // GUARDED_BY(run_mu_)
  std::thread thread_;
};

}  // namespace backbone::cluster
