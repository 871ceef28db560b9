// Catalog: the embedded broker's topics, subscriptions, snapshots and schemas, kept as one JSON
// file that is replaced atomically (write, fsync, rename, fsync the folder) on every change.
//
// Thread-safety: plain values and functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backbone/broker.h"

namespace backbone::embedded {

struct CatalogTopic {
  uint32_t id = 0;  // names the topic's folder; never reused
  TopicConfig config;
};

struct CatalogSubscription {
  uint32_t id = 0;            // names the subscription in the journal and in ack ids; never reused
  uint32_t topic_id = 0;      // 0 once the topic is deleted
  uint64_t start_offset = 0;  // the topic's end when the subscription was created
  SubscriptionConfig config;
};

// A snapshot: the acknowledgement state of a subscription at its making, in its topic's offsets.
struct CatalogSnapshot {
  SnapshotConfig config;
  uint32_t topic_id = 0;
  uint64_t lwm = 0;             // every offset below is acked
  std::vector<uint64_t> acked;  // acked offsets at or above lwm
};

struct Catalog {
  uint32_t next_id = 1;
  std::vector<CatalogTopic> topics;
  std::vector<CatalogSubscription> subscriptions;
  std::vector<CatalogSnapshot> snapshots;
  std::vector<std::vector<SchemaConfig>> schemas;  // each schema's revisions, newest first
};

// A missing file is an empty catalog.
Result<Catalog> load_catalog(const std::string& path);
Result<void> save_catalog(const std::string& path, const Catalog& catalog);

}  // namespace backbone::embedded
