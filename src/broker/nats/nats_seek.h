// Snapshots and seeks on the NATS backend (doc/broker_nats.md, "Snapshots and seek"): what any
// process, not only the one serving a subscription, reads from a subscription's journals and
// writes to them.
//
//  - A part's acknowledgement state, in stream sequences, is a replay of its journal
//    (replay_journal), the same replay that a process serving the part starts from.
//  - A seek appends a new base to each part's journal (reset_journal): a base record, the acks
//    above it and the latest claim, in one append fenced on the journal's last sequence like
//    every other. The process serving the part is fenced off by it and reloads from it: at once
//    when it is this process, within about a second otherwise (NatsSubscription notices writes
//    that are not its own).
//  - A snapshot is each part's state, compacted against the topic (read_parts), kept as journal
//    records (one base per part, its sub_id the bucket) in the stream <ns>-snapshots under
//    <ns>.n.<uid>, with its config in the catalog.
//
// Thread-safety: plain functions over a thread-safe NatsClient.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backbone/broker.h"
#include "broker/delivery/journal_record.h"
#include "broker/nats/nats_client.h"
#include "broker/nats/nats_subscription.h"

namespace backbone::nats {

struct ReplayedJournal {
  delivery::JournalFold fold;  // the part's records, as sub_id 0
  uint64_t last = 0;           // the journal subject's last sequence (0: it holds none)
  uint64_t records = 0;
  uint64_t claimed = 0;  // the latest epoch a claim names (0: none)
};
Result<ReplayedJournal> replay_journal(NatsClient& client, const std::string& stream,
                                       const std::string& subject);

// Makes `base` (its lwm and acks, in stream sequences; its attempts are dropped) the journal's
// state, keeping its dead-letter count and its latest claim. Retried when another writer
// appends in between; kUnavailable when that keeps happening.
Result<void> reset_journal(NatsClient& client, const std::string& stream,
                           const std::string& subject, const delivery::RestoredState& base);

// Each part's acknowledgement state as its journal says now, its low-water mark moved past the
// acked messages that follow it in the topic (so that little but the acks past the first unacked
// message is kept), and when the oldest unacked message was published (nullopt: none).
struct PartsState {
  std::vector<delivery::RestoredState> parts;  // by bucket (one when the topic is not split)
  std::optional<Timestamp> oldest_unacked;
};
Result<PartsState> read_parts(NatsClient& client, const std::string& ns,
                              const SubscriptionEntry& entry, uint32_t buckets);
// reset_journal on each part of subscription `name` (parts.size() is max(buckets, 1)).
Result<void> reset_parts(NatsClient& client, const std::string& ns, const std::string& name,
                         uint32_t buckets, const std::vector<delivery::RestoredState>& parts);

// The first sequence of `stream` in [from, to) whose message was published at or after `time`,
// by the publish time each message carries (`to` when there is none). Publish times are taken
// to grow with the sequence; where publishers' clocks disagree the answer is one of the
// places where they cross.
Result<uint64_t> first_published_at_or_after(NatsClient& client, const std::string& stream,
                                             uint64_t from, uint64_t to, Timestamp time);
// The publish time of the message at `seq` (kNotFound: the stream holds none there).
Result<Timestamp> published_at(NatsClient& client, const std::string& stream, uint64_t seq);

// A snapshot's parts, kept under `uid`; read back (kDataLoss when they are not all there);
// removed.
Result<void> save_parts(NatsClient& client, const std::string& ns, const std::string& uid,
                        const std::vector<delivery::RestoredState>& parts);
Result<std::vector<delivery::RestoredState>> load_parts(NatsClient& client, const std::string& ns,
                                                        const std::string& uid, size_t count);
Result<void> drop_parts(NatsClient& client, const std::string& ns, const std::string& uid);

}  // namespace backbone::nats
