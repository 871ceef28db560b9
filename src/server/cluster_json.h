// The cluster of one environment as JSON, the same in `GET /v1/envs/{env}/cluster` and
// `backbone cluster show --json` (doc/scale_out.md, "Seeing the cluster"):
//   "buckets", "unowned", "backlog" (unprocessed events in all), "backlog_capped";
//   "members": [{"id", "address", "beat", "leaving", "beat_age_seconds", "buckets"}];
//   "leases": [{"bucket", "owner" (null: none), "epoch", "age_seconds" (since its owner last
//   changed; null: never owned), "backlog" (its unprocessed events)}].
// Ages are from `now` to times written by the store's writers' clocks.
//
// Thread-safety: pure functions (bucket_backlog reads the store, which is thread-safe).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "backbone/event_store.h"

namespace backbone::server {

// An environment's unprocessed events by bucket (bucket_of their ordering key), from the store:
// the work each bucket's owner has still to do. Reads at most `cap` events; `capped` says
// there were more.
struct BucketBacklog {
  std::vector<uint64_t> events;  // by bucket
  bool capped = false;
};
Result<BucketBacklog> bucket_backlog(EventStore& store, uint32_t buckets, size_t cap = 100'000);

nlohmann::json cluster_json(const ClusterView& view, const BucketBacklog& backlog, Timestamp now);

}  // namespace backbone::server
