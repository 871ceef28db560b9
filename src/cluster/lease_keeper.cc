#include "cluster/lease_keeper.h"

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <set>

#include "backbone/sha256.h"

namespace backbone::cluster {

std::string new_member_id() {
  char host[64] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
  std::random_device rd;
  char id[128];
  std::snprintf(id, sizeof id, "%.40s-%d-%08x", host, static_cast<int>(getpid()), rd());
  return id;
}

namespace {

// 32 bytes from the kernel's random source, in hex.
std::string new_key() {
  unsigned char raw[32];
  size_t got = 0;
  while (got < sizeof raw) {
    const ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<LeaseKeeper>> LeaseKeeper::open(EventStore& store, const Clock& clock,
                                                       LeaseOptions options) {
  if (options.member.empty() || options.member.size() > 64) {
    return make_error(Errc::kInvalidArgument, "a member id has 1 to 64 bytes", "member");
  }
  if (options.buckets == 0 || options.buckets > 4096) {
    return make_error(Errc::kInvalidArgument, "the bucket count is 1 to 4096", "buckets");
  }
  if (options.ttl_us <= 0) {
    return make_error(Errc::kInvalidArgument, "the lease ttl must be positive", "lease_ttl");
  }
  // A survivor sees a silent member's last beat and acts on its expiry at its own ticks, each up
  // to a beat late: at most 1 s, so that a takeover comes within about the ttl + 2 s.
  if (options.beat_interval_us <= 0) {
    options.beat_interval_us = std::min<int64_t>(options.ttl_us / 4, 1'000'000);
  }
  auto recorded = store.init_buckets(options.buckets);
  if (!recorded.ok()) return recorded.error();
  return std::unique_ptr<LeaseKeeper>(new LeaseKeeper(store, clock, std::move(options), *recorded));
}

LeaseKeeper::LeaseKeeper(EventStore& store, const Clock& clock, LeaseOptions o, uint32_t buckets)
    : store_(store),
      clock_(clock),
      o_(std::move(o)),
      buckets_(buckets),
      key_(new_key()),
      key_sha256_(sha256_hex(key_)) {}

bool LeaseKeeper::is_member_key(std::string_view member, std::string_view key) const {
  const std::string hash = sha256_hex(key);
  std::lock_guard lk(mu_);
  for (const ClusterMember& m : view_.members) {
    if (m.id == member) return !m.key_sha256.empty() && m.key_sha256 == hash;
  }
  return false;
}

LeaseKeeper::~LeaseKeeper() { stop(); }

std::optional<uint64_t> LeaseKeeper::epoch(uint32_t bucket) const {
  std::lock_guard lk(mu_);
  auto it = owned_.find(bucket);
  if (it == owned_.end()) return std::nullopt;
  return it->second;
}

std::vector<BucketLease> LeaseKeeper::owned() const {
  std::lock_guard lk(mu_);
  std::vector<BucketLease> out;
  for (const auto& [b, e] : owned_) out.push_back({b, o_.member, e});
  return out;
}

LeaseKeeper::VersionedView LeaseKeeper::view(uint64_t after, int64_t timeout_us) const {
  std::unique_lock lk(mu_);
  view_changed_.wait_for(lk, std::chrono::microseconds(std::max<int64_t>(0, timeout_us)),
                         [&] { return view_version_ > after; });
  return {view_, view_version_};
}

namespace {

// Whether two views differ in more than the members' beats.
bool differs(const ClusterView& a, const ClusterView& b) {
  if (a.leases != b.leases || a.members.size() != b.members.size()) return true;
  for (size_t i = 0; i < a.members.size(); ++i) {
    const ClusterMember& x = a.members[i];
    const ClusterMember& y = b.members[i];
    if (x.id != y.id || x.address != y.address || x.leaving != y.leaving) return true;
  }
  return false;
}

}  // namespace

void LeaseKeeper::on_change(Listener listener) {
  std::lock_guard lk(mu_);
  listeners_.push_back(std::move(listener));
}

void LeaseKeeper::set_view(const ClusterView& view) {
  {
    std::lock_guard lk(mu_);
    if (!differs(view_, view) && view_version_ > 0) {
      view_ = view;
      return;
    }
    view_ = view;
    ++view_version_;
  }
  view_changed_.notify_all();
}

void LeaseKeeper::set_owned(std::map<uint32_t, uint64_t> next) {
  std::vector<BucketLease> gained;
  std::vector<uint32_t> lost;
  std::vector<Listener> listeners;
  size_t owned_count = 0;
  {
    std::lock_guard lk(mu_);
    for (const auto& [b, e] : owned_) {
      auto it = next.find(b);
      if (it == next.end() || it->second != e) lost.push_back(b);
    }
    for (const auto& [b, e] : next) {
      auto it = owned_.find(b);
      if (it == owned_.end() || it->second != e) gained.push_back({b, o_.member, e});
    }
    owned_ = std::move(next);
    owned_count = owned_.size();
    listeners = listeners_;
  }
  if (o_.metrics) {
    o_.metrics
        ->gauge("backbone_cluster_buckets_owned", "Buckets this process owns", {{"env", o_.env}})
        .set(static_cast<double>(owned_count));
  }
  if (gained.empty() && lost.empty()) return;
  if (o_.metrics) {
    o_.metrics
        ->counter("backbone_cluster_rebalances_total",
                  "Heartbeats at which this process gained or lost buckets", {{"env", o_.env}})
        .inc();
  }
  for (const Listener& l : listeners) l(gained, lost);
}

Result<void> LeaseKeeper::tick() {
  std::lock_guard tl(tick_mu_);
  const Timestamp now = clock_.now();
  auto view = store_.beat({o_.member, o_.address, 0, leaving_, key_sha256_});
  if (!view.ok()) {
    // Cut off from the store for a whole ttl: the others take the buckets over, so stop
    // serving them (the store refuses this process's commits for them anyway).
    if (!last_beat_ || now.micros() - last_beat_->micros() >= o_.ttl_us) set_owned({});
    return view.error();
  }
  last_beat_ = now;
  return step(*view);
}

Result<void> LeaseKeeper::step(const ClusterView& view) {
  const Timestamp now = clock_.now();
  std::set<std::string> live;
  std::set<std::string> present;
  for (const ClusterMember& m : view.members) {
    present.insert(m.id);
    if (m.id == o_.member) {
      if (!leaving_) live.insert(m.id);
      continue;
    }
    Seen& s = seen_.try_emplace(m.id, Seen{m.beat, now}).first->second;
    if (s.beat != m.beat) s = Seen{m.beat, now};
    if (!m.leaving && now.micros() - s.since.micros() < o_.ttl_us) live.insert(m.id);
  }
  std::erase_if(seen_, [&](const auto& kv) { return !present.count(kv.first); });

  std::map<uint32_t, uint64_t> mine;
  std::vector<const BucketLease*> free;
  // Since when each bucket up for taking has been left: its release as first seen here, or its
  // owner's last heartbeat seen changing.
  std::map<uint32_t, Timestamp> left_at;
  for (const BucketLease& l : view.leases) {
    if (l.owner == o_.member) {
      mine[l.bucket] = l.epoch;
    } else if (l.owner.empty() || !live.count(l.owner)) {
      free.push_back(&l);
      if (l.owner.empty()) {
        auto [it, fresh] = free_since_.try_emplace(l.bucket, l.epoch, now);
        if (!fresh && it->second.first != l.epoch) it->second = {l.epoch, now};
        left_at[l.bucket] = it->second.second;
      } else {
        auto s = seen_.find(l.owner);
        left_at[l.bucket] = s == seen_.end() ? now : s->second.since;
      }
    }
    if (!l.owner.empty()) free_since_.erase(l.bucket);
  }

  // This member's share: the live members, sorted, split the buckets; the first ones get the
  // remainder.
  size_t share = 0;
  if (!leaving_ && !live.empty()) {
    const auto n = static_cast<size_t>(view.leases.size());
    const auto index = static_cast<size_t>(std::distance(live.begin(), live.find(o_.member)));
    share = n / live.size() + (index < n % live.size() ? 1 : 0);
  }
  std::vector<LeaseChange> changes;
  if (mine.size() > share) {
    // The highest-numbered go; what stays keeps its epoch.
    auto it = mine.rbegin();
    for (size_t k = mine.size() - share; k > 0; --k, ++it) {
      changes.push_back({it->first, it->second, false});
    }
  } else if (mine.size() < share && !free.empty()) {
    // Members that claim at once start at different places, to meet less often.
    const auto index = static_cast<size_t>(std::distance(live.begin(), live.find(o_.member)));
    const size_t start = index * free.size() / live.size();
    for (size_t k = 0; k < free.size() && changes.size() < share - mine.size(); ++k) {
      const BucketLease& l = *free[(start + k) % free.size()];
      changes.push_back({l.bucket, l.epoch, true});
    }
  }
  // The view shows what this tick changed, as the store now holds it: a claim that held is ours
  // at its new epoch, a release that held is free at its new one.
  ClusterView after = view;
  if (!changes.empty()) {
    auto done = store_.change_leases(o_.member, changes);
    if (!done.ok()) {
      set_view(view);
      set_owned(std::move(mine));
      return done.error();
    }
    std::map<uint32_t, BucketLease*> shown;
    for (BucketLease& l : after.leases) shown[l.bucket] = &l;
    for (size_t i = 0; i < changes.size(); ++i) {
      const LeaseChange& c = changes[i];
      if (c.claim && (*done)[i]) {
        mine[c.bucket] = *(*done)[i];
        if (o_.metrics) {
          o_.metrics
              ->histogram("backbone_cluster_takeover_seconds",
                          "From when a bucket was left (its owner's last heartbeat, or its "
                          "release) to its claim by this process",
                          {{"env", o_.env}})
              .observe(static_cast<double>(now.micros() - left_at[c.bucket].micros()) / 1e6);
        }
      }
      // A release that did not hold: the bucket was taken meanwhile; it is not ours either way.
      if (!c.claim) mine.erase(c.bucket);
      if (auto it = shown.find(c.bucket); (*done)[i] && it != shown.end()) {
        it->second->owner = c.claim ? o_.member : std::string();
        it->second->epoch = *(*done)[i];
        it->second->changed_at = now;
      }
    }
  }
  set_view(after);
  set_owned(std::move(mine));

  // Members gone for long (ten ttls) are forgotten by the first live member.
  if (!live.empty() && *live.begin() == o_.member) {
    std::vector<std::string> gone;
    for (const ClusterMember& m : view.members) {
      if (m.id == o_.member || live.count(m.id)) continue;
      auto it = seen_.find(m.id);
      if (it != seen_.end() && now.micros() - it->second.since.micros() >= 10 * o_.ttl_us) {
        gone.push_back(m.id);
      }
    }
    if (!gone.empty()) BACKBONE_TRY(store_.forget_members(gone));
  }
  return {};
}

Result<void> LeaseKeeper::leave(const std::function<void()>& released) {
  {
    std::lock_guard tl(tick_mu_);
    leaving_ = true;
  }
  BACKBONE_TRY(tick());
  if (released) released();
  const std::string me = o_.member;
  return store_.forget_members(std::span(&me, 1));
}

void LeaseKeeper::start() {
  {
    std::lock_guard lk(run_mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    std::unique_lock lk(run_mu_);
    while (!stopping_) {
      lk.unlock();
      (void)tick();  // a failure is retried at the next beat; the ttl bounds how long it may last
      lk.lock();
      wake_.wait_for(lk, std::chrono::microseconds(o_.beat_interval_us),
                     [this] { return stopping_ || poked_; });
      poked_ = false;
    }
  });
}

void LeaseKeeper::poke() {
  {
    std::lock_guard lk(run_mu_);
    poked_ = true;
  }
  wake_.notify_all();
}

void LeaseKeeper::stop() {
  {
    std::lock_guard lk(run_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace backbone::cluster
