#include "server/cluster_json.h"

#include <algorithm>
#include <map>

#include "backbone/record_key.h"

namespace backbone::server {
namespace {

constexpr size_t kPage = 1000;

nlohmann::json age(const std::optional<Timestamp>& at, Timestamp now) {
  if (!at) return nullptr;
  return static_cast<double>(std::max<int64_t>(0, now.micros() - at->micros())) / 1e6;
}

}  // namespace

Result<BucketBacklog> bucket_backlog(EventStore& store, uint32_t buckets, size_t cap) {
  BucketBacklog out;
  out.events.assign(buckets, 0);
  if (buckets == 0) return out;
  std::optional<EventCursor> after;
  for (size_t read = 0;;) {
    const size_t want = std::min(kPage, cap - read);
    auto page = store.unprocessed(std::max<size_t>(want, 1), after);
    if (!page.ok()) return page.error();
    if (want == 0) {  // read `cap` already: are there more?
      out.capped = !page->empty();
      return out;
    }
    for (const StoredEvent& e : *page) {
      ++out.events[bucket_of(OrderingKey(e.event.record_key()).str(), buckets)];
    }
    read += page->size();
    if (page->size() < want) return out;
    after = EventCursor{page->back().event.timestamp(), page->back().event.id()};
  }
}

nlohmann::json cluster_json(const ClusterView& view, const BucketBacklog& backlog, Timestamp now) {
  std::map<std::string, int> owned;
  uint64_t total = 0;
  nlohmann::json leases = nlohmann::json::array(), members = nlohmann::json::array();
  for (const BucketLease& l : view.leases) {
    ++owned[l.owner];
    const uint64_t waiting = l.bucket < backlog.events.size() ? backlog.events[l.bucket] : 0;
    total += waiting;
    leases.push_back(
        {{"bucket", l.bucket},
         {"owner", l.owner.empty() ? nlohmann::json(nullptr) : nlohmann::json(l.owner)},
         {"epoch", l.epoch},
         {"age_seconds", age(l.changed_at, now)},
         {"backlog", waiting}});
  }
  for (const ClusterMember& m : view.members) {
    members.push_back({{"id", m.id},
                       {"address", m.address},
                       {"beat", m.beat},
                       {"leaving", m.leaving},
                       {"beat_age_seconds", age(m.beat_at, now)},
                       {"buckets", owned[m.id]}});
  }
  return {{"buckets", view.leases.size()},    {"unowned", owned[""]}, {"backlog", total},
          {"backlog_capped", backlog.capped}, {"members", members},   {"leases", leases}};
}

}  // namespace backbone::server
