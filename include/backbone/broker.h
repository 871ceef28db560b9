// Broker: the port for durable publish/subscribe with Google Cloud Pub/Sub semantics (SPEC §4).
// Backends are chosen by URL (Broker::open):
//
//   embedded:///abs/path, embedded://relative/path   the single-machine default
//                                                     (src/broker/embedded,
//                                                     doc/broker_log_format.md)
//   nats://host:port[,…]                              NATS JetStream (doc/broker_nats.md)
//   pubsub://project                                  Google Cloud Pub/Sub (doc/broker.md)
//
// doc/broker.md maps the port onto NATS JetStream and Google Cloud Pub/Sub.
//
// Contract (every backend; tests/broker/broker_conformance.h checks it):
//  - publish returns message ids only once the messages are durable.
//  - Each subscription gets every message published to its topic after it was created
//    (fan-out); delivery is at least once.
//  - A delivered message must be acked within the ack deadline, else it is redelivered. A nack,
//    or a deadline that passes, counts as a failed attempt: the message comes back after the
//    retry policy's backoff (min * 2^(attempt-1), capped at max; at once without a policy), or
//    after the nack's own delay when one is given.
//  - With a dead-letter policy, a message whose `max_delivery_attempts`-th delivery fails is
//    published to the dead-letter topic instead, with its data, attributes and ordering key, and
//    the attributes of kDeadLetterAttributes. dead_letter() does so at once.
//  - An ordered subscription delivers the messages of one ordering key in publish order, one at
//    a time: the next only once the previous is acked or dead-lettered. Keys never block each
//    other, and a dead-letter never stalls its key.
//  - An ack that returns is durable: that delivery never comes back.
//  - All time is read from the injected Clock (pubsub://: the server's).
//  - A backend may add labels of its own to a resource; those given are kept.
//
// Thread-safety: a Broker is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backbone/clock.h"
#include "backbone/result.h"
#include "backbone/timestamp.h"

namespace backbone {

using Attributes = std::map<std::string, std::string>;

// Microsecond durations, as the Clock counts.
inline constexpr int64_t kSecond = 1'000'000;
inline constexpr int64_t kMinute = 60 * kSecond;
inline constexpr int64_t kHour = 60 * kMinute;
inline constexpr int64_t kDay = 24 * kHour;

// Schemas (Pub/Sub's): an Avro or protocol-buffer definition, kept in revisions, that a topic's
// messages must match.
enum class SchemaType : uint8_t { kAvro, kProtocolBuffer };
enum class SchemaEncoding : uint8_t { kJson, kBinary };

// One revision of a schema. A schema's name is a resource name, as a topic's.
struct SchemaConfig {
  std::string name;
  SchemaType type = SchemaType::kAvro;
  std::string definition;
  std::string revision_id;         // set by the broker (8 hex digits)
  Timestamp revision_create_time;  // set by the broker
  bool operator==(const SchemaConfig&) const = default;
};

// A topic's schema: published messages must match one of the revisions from first to last
// (each empty: the oldest, the newest) in this encoding.
struct TopicSchemaSettings {
  std::string schema;
  SchemaEncoding encoding = SchemaEncoding::kJson;
  std::string first_revision_id;
  std::string last_revision_id;
  bool operator==(const TopicSchemaSettings&) const = default;
};

struct TopicConfig {
  std::string name;
  Attributes labels;
  // How long the topic keeps its messages, acked or not (10 min .. 31 d; Pub/Sub's
  // message_retention_duration); nullopt: until every subscription has acked them.
  std::optional<int64_t> retention_us;
  // The schema its messages must match (the schema must exist, with the revisions named).
  std::optional<TopicSchemaSettings> schema;
  bool operator==(const TopicConfig&) const = default;
};

struct RetryPolicy {
  int64_t min_backoff_us = 10 * kSecond;   // 0 .. 600 s
  int64_t max_backoff_us = 600 * kSecond;  // min .. 600 s
  bool operator==(const RetryPolicy&) const = default;
};

struct DeadLetterPolicy {
  std::string topic;
  int max_delivery_attempts = 5;  // 5 .. 100
  bool operator==(const DeadLetterPolicy&) const = default;
};

// How an ordered subscription hands out one ordering key's messages. Both keep publish order
// within a key, and keys never block each other.
enum class KeyDelivery : uint8_t {
  // SPEC §4: one at a time; the next only after the previous one is acked or dead-lettered.
  kOneAtATime,
  // Google Cloud Pub/Sub's rule: a key's messages go out in order without waiting for acks; a
  // nack or an expired deadline brings the message back after its backoff, and the key's later
  // deliveries that are not acked yet are withdrawn (their ack ids go stale) and come again
  // after it, in order. What the Pub/Sub front gives subscriptions that Google's clients create.
  kStreamed,
};

struct SubscriptionConfig {
  std::string name;
  std::string topic;
  int64_t ack_deadline_us = 10 * kSecond;  // 10 .. 600 s
  bool ordered = false;
  KeyDelivery key_delivery = KeyDelivery::kOneAtATime;  // when ordered; cannot change
  std::optional<RetryPolicy> retry;
  std::optional<DeadLetterPolicy> dead_letter;
  int64_t retention_us = 7 * kDay;  // unacked messages older than this are dropped; 10 min .. 31 d
  Attributes labels;
  // Detached from its topic (Broker::detach_subscription): it holds and receives nothing, and
  // pulls fail. Set only by detach_subscription, never by create or update.
  bool detached = false;
  bool operator==(const SubscriptionConfig&) const = default;
};

// A snapshot (Pub/Sub's): a subscription's acknowledgement state at one moment, which a seek
// puts back on a subscription of the same topic: what was acked then is acked, and everything
// else, published before or since, is not.
struct SnapshotConfig {
  std::string name;
  std::string topic;      // of the subscription it was made from
  Timestamp expire_time;  // it lapses then: 7 days after the oldest message it needs was published
  Attributes labels;
  bool operator==(const SnapshotConfig&) const = default;
};
inline constexpr int64_t kSnapshotLifeUs = 7 * kDay;

struct OutgoingMessage {
  std::string data;
  Attributes attributes;
  std::string ordering_key;  // empty: none
};

struct Message {
  std::string id;  // unique within the broker
  std::string data;
  Attributes attributes;
  std::string ordering_key;
  Timestamp publish_time;
};

struct ReceivedMessage {
  std::string ack_id;  // names this one delivery
  Message message;
  int delivery_attempt = 1;  // 1 for the first delivery
};

// A subscription's figures. A backend that cannot know the subscription's own figures
// (pubsub://: Pub/Sub's API has none, only Cloud Monitoring) leaves them unknown (nullopt) and
// says in `client` what this client of the subscription has in hand.
struct SubscriptionStats {
  std::optional<uint64_t> undelivered;           // waiting for delivery (backlog), incl. backoffs
  std::optional<int64_t> oldest_unacked_age_us;  // of the oldest message not yet acked; 0 if none
  std::optional<uint64_t> in_flight;             // delivered, not yet acked or failed
  std::optional<uint64_t> dead_lettered;  // forwarded to the dead-letter topic, since creation
  struct Client {
    uint64_t in_flight = 0;      // handed out by this client, not yet settled
    uint64_t held = 0;           // held back by this client, behind their key or for a backoff
    uint64_t dead_lettered = 0;  // dead-lettered by this client since it opened
    bool operator==(const Client&) const = default;
  };
  std::optional<Client> client;  // set where the subscription's own figures are unknown

  // Every subscription figure known, and 0.
  static SubscriptionStats zero() { return {0, 0, 0, 0, std::nullopt}; }
  // Whether nothing waits or is out, as far as these figures say: the subscription's own when
  // known, else this client's (nullopt when neither is known).
  std::optional<bool> idle() const;
};

// Attributes added to a dead-lettered message.
inline constexpr std::string_view kAttrDeliveryAttempt = "backbone.delivery_attempt";
inline constexpr std::string_view kAttrLastError = "backbone.last_error";
inline constexpr std::string_view kAttrSourceSubscription = "backbone.source_subscription";
inline constexpr std::string_view kAttrSourceMessageId = "backbone.source_message_id";
inline constexpr std::string_view kAttrDeadLetteredAt = "backbone.dead_lettered_at";

// Attributes a message published to a topic with a schema gets: the revision it matched, and
// the encoding ("JSON" or "BINARY").
inline constexpr std::string_view kAttrSchemaRevision = "googclient_schemarevisionid";
inline constexpr std::string_view kAttrSchemaEncoding = "googclient_schemaencoding";

// The topic a subscription reads as once its topic was deleted (Google's name for it).
inline constexpr std::string_view kDetachedTopic = "_deleted-topic_";

// Limits (as Google Cloud Pub/Sub's).
inline constexpr size_t kMaxMessageBytes = 10 * 1024 * 1024;  // data plus attributes
inline constexpr size_t kMaxAttributes = 100;
inline constexpr size_t kMaxAttributeKeyBytes = 256;
inline constexpr size_t kMaxAttributeValueBytes = 1024;
inline constexpr size_t kMaxOrderingKeyBytes = 1024;

struct BrokerOptions {
  std::string url;
  const Clock* clock = nullptr;  // nullptr: the system clock. Must outlive the broker.
  // Topics created through this broker split their messages into this many buckets by ordering
  // key, so that several processes can serve one subscription (doc/scale_out.md); 0: none. A
  // topic keeps the count it was created with. Only nats:// splits; the others ignore it.
  uint32_t buckets = 0;
};

class Broker {
 public:
  virtual ~Broker() = default;

  // Opens the broker named by options.url. kInvalidArgument for a bad URL, kUnavailable when
  // it cannot be reached (or, embedded, is held by another process).
  static Result<std::unique_ptr<Broker>> open(const BrokerOptions& options);

  // Topics. create_* fail with kAlreadyExists; get/delete with kNotFound.
  virtual Result<void> create_topic(const TopicConfig& config) = 0;
  virtual Result<TopicConfig> get_topic(std::string_view name) = 0;
  virtual Result<std::vector<TopicConfig>> list_topics() = 0;
  // Changes a topic's labels, retention and schema settings.
  virtual Result<void> update_topic(const TopicConfig& config) = 0;
  // Subscriptions of a deleted topic stay, detached: they receive nothing more.
  virtual Result<void> delete_topic(std::string_view name) = 0;

  // Subscriptions. The topic (and the dead-letter topic) must exist: kNotFound.
  virtual Result<void> create_subscription(const SubscriptionConfig& config) = 0;
  virtual Result<SubscriptionConfig> get_subscription(std::string_view name) = 0;
  virtual Result<std::vector<SubscriptionConfig>> list_subscriptions() = 0;
  // Changes the policies of an existing subscription; its topic cannot change.
  virtual Result<void> update_subscription(const SubscriptionConfig& config) = 0;
  virtual Result<void> delete_subscription(std::string_view name) = 0;
  // Snapshots (names as for topics; kAlreadyExists, kNotFound). A snapshot keeps the messages it
  // needs until it expires; an expired one is gone (kNotFound).
  virtual Result<SnapshotConfig> create_snapshot(std::string_view name,
                                                 std::string_view subscription,
                                                 const Attributes& labels) = 0;
  virtual Result<SnapshotConfig> get_snapshot(std::string_view name) = 0;
  virtual Result<std::vector<SnapshotConfig>> list_snapshots() = 0;
  // Changes its labels and (earlier only) its expire time.
  virtual Result<void> update_snapshot(const SnapshotConfig& config) = 0;
  virtual Result<void> delete_snapshot(std::string_view name) = 0;
  // Seeks, as Pub/Sub: every message published before `time` becomes acked and every one
  // published at or after it unacked, so it is delivered again (a time ahead acks everything:
  // a purge). kImmutable when messages published at or after `time` are no longer held (the
  // error says from when they are). Every delivery out goes stale.
  virtual Result<void> seek_to_time(std::string_view subscription, Timestamp time) = 0;
  // Puts a snapshot's acknowledgement state on the subscription; kInvalidArgument when the
  // snapshot was made on another topic.
  virtual Result<void> seek_to_snapshot(std::string_view subscription,
                                        std::string_view snapshot) = 0;
  // Detaches a subscription from its topic, as Pub/Sub does: what it holds is dropped, it
  // receives nothing more, and pulls fail with kImmutable; it stays, `detached`, until deleted.
  virtual Result<void> detach_subscription(std::string_view name) = 0;

  // Schemas (names as for topics). create_schema checks the definition (kInvalidArgument with
  // the parser's reason) and makes its first revision; commit_schema adds a newer revision of
  // an existing one (kNotFound), of the same type. Each returns the revision made.
  virtual Result<SchemaConfig> create_schema(const SchemaConfig& config) = 0;
  virtual Result<SchemaConfig> commit_schema(const SchemaConfig& config) = 0;
  // The newest revision, or the one named (kNotFound when it does not exist).
  virtual Result<SchemaConfig> get_schema(std::string_view name,
                                          std::string_view revision_id = {}) = 0;
  // The newest revision of each schema.
  virtual Result<std::vector<SchemaConfig>> list_schemas() = 0;
  // Every revision of a schema, newest first.
  virtual Result<std::vector<SchemaConfig>> list_schema_revisions(std::string_view name) = 0;
  // Deletes a schema with all its revisions. A topic that names it then refuses every publish
  // (kImmutable) until its settings change.
  virtual Result<void> delete_schema(std::string_view name) = 0;
  // Deletes one revision; kImmutable for a schema's only one.
  virtual Result<void> delete_schema_revision(std::string_view name,
                                              std::string_view revision_id) = 0;

  // Publishes in order; returns each message's id once all are durable. On a topic with a
  // schema, a message that matches none of its revisions fails the whole call
  // (kInvalidArgument, with the message's index and the reason), and a message that matches
  // gets the attributes kAttrSchemaRevision and kAttrSchemaEncoding (Pub/Sub's).
  virtual Result<std::vector<std::string>> publish(std::string_view topic,
                                                   std::span<const OutgoingMessage> messages) = 0;

  // Up to `max` deliverable messages. With wait_us > 0, waits up to that long (real time) for
  // at least one.
  virtual Result<std::vector<ReceivedMessage>> pull(std::string_view subscription, size_t max,
                                                    int64_t wait_us = 0) = 0;
  // Acks; returns how many ack ids named a current delivery (stale ones are ignored).
  virtual Result<size_t> ack(std::string_view subscription,
                             std::span<const std::string> ack_ids) = 0;
  // A failed attempt: redelivery after `delay_us` if given, else after the retry policy's
  // backoff; or the dead-letter topic when the attempts are spent. `reason` is kept as the
  // last error.
  virtual Result<void> nack(std::string_view subscription, std::span<const std::string> ack_ids,
                            std::optional<int64_t> delay_us = std::nullopt,
                            std::string_view reason = {}) = 0;
  // Sets the deadline of these deliveries to now + deadline_us (0 .. 600 s; 0 is a nack).
  virtual Result<void> modify_ack_deadline(std::string_view subscription,
                                           std::span<const std::string> ack_ids,
                                           int64_t deadline_us) = 0;
  // Sends a delivery to the dead-letter topic at once (a non-retriable failure).
  // kInvalidArgument if the subscription has no dead-letter policy.
  virtual Result<void> dead_letter(std::string_view subscription, const std::string& ack_id,
                                   std::string_view reason) = 0;

  virtual Result<SubscriptionStats> stats(std::string_view subscription) = 0;

  // True when several processes may pull one subscription at once, so that one record's
  // deliveries (on one subscription, or on two) can be in different processes' hands: Pub/Sub
  // spreads a subscription's messages, a key's among them, over all of its subscribers. False
  // when one process serves a subscription at a time (embedded, NATS). What a process keeps in
  // memory about a record is then all there is; otherwise the store is asked.
  virtual bool shares_subscriptions() const = 0;

  // Splitting one subscription's work over processes (doc/scale_out.md). The number of buckets
  // that the subscription's messages are split into, by the bucket_of() of their ordering key
  // (of their message id when they have none); 0 when it is served whole.
  virtual Result<uint32_t> buckets(std::string_view subscription);
  // Serves only these buckets of a split subscription in this process (every one until it is
  // called), each with the epoch of this process's lease on it: pulls take only from them, and
  // deliveries of the others go stale here. A bucket that this process starts serving fences
  // off the process that served it before (its journal appends, acks and dead letters for the
  // bucket are refused), unless a process has served it at a later epoch already: then it is
  // not served here (kFenced inside). kInvalidArgument when the subscription is not split.
  virtual Result<void> serve_buckets(std::string_view subscription,
                                     const std::map<uint32_t, uint64_t>& buckets);
};

// Checks shared by every backend (src/broker/validation.cc).
Result<void> validate_resource_name(std::string_view name, const char* what);
Result<void> validate_topic_config(const TopicConfig& config);
Result<void> validate_subscription_config(const SubscriptionConfig& config);
// validate_subscription_config(next), and kInvalidArgument when `next` changes what cannot change
// after creation: the topic (where "topic"), message ordering ("enable_message_ordering") or an
// ordered subscription's key delivery ("key_delivery").
Result<void> validate_subscription_update(const SubscriptionConfig& current,
                                          const SubscriptionConfig& next);
Result<void> validate_messages(std::span<const OutgoingMessage> messages);
// kInvalidArgument when `next` changes a snapshot's name or topic, or moves its expiry later.
Result<void> validate_snapshot_update(const SnapshotConfig& current, const SnapshotConfig& next);
// When a snapshot made now expires: kSnapshotLifeUs after the oldest unacked message of the
// subscription was published (now, if none). kImmutable when that is less than an hour away (as
// Pub/Sub: the snapshot would lapse before it could be used).
Result<Timestamp> snapshot_expiry(std::optional<Timestamp> oldest_unacked_published, Timestamp now);
// What a seek to `time` answers when messages published since are no longer held; `held_from`:
// the publish time of the oldest message held (none: nothing is held).
Error beyond_retention_error(std::string_view subscription, Timestamp time,
                             std::optional<Timestamp> held_from);
// What a pull of a detached subscription answers (kImmutable: FAILED_PRECONDITION, as Pub/Sub).
Error detached_error(std::string_view subscription);
// A nack delay (`field` "delay") or a new ack deadline ("ack_deadline"): 0 .. 600 s.
Result<void> validate_delay(int64_t us, const char* field);
// "one-at-a-time" or "streamed"; the name back (nullopt when it names neither).
std::string_view key_delivery_name(KeyDelivery d);
std::optional<KeyDelivery> key_delivery_from_name(std::string_view name);
// Pub/Sub's names of schema types and encodings: "AVRO", "PROTOCOL_BUFFER"; "JSON", "BINARY"
// (nullopt for another name).
std::string_view schema_type_name(SchemaType type);
std::string_view schema_encoding_name(SchemaEncoding encoding);
std::optional<SchemaType> schema_type_from_name(std::string_view name);
std::optional<SchemaEncoding> schema_encoding_from_name(std::string_view name);
// A duration for people: "30s", "31d", "250ms".
std::string format_duration(int64_t us);
// Adds to a dead-lettered message's own attributes the kAttr* ones above: which attempt it
// failed, why (cut to an attribute's 1 KiB), the subscription and message it came from, and when.
void add_dead_letter_attributes(Attributes& attrs, int attempt, const std::string& reason,
                                std::string_view subscription, std::string_view message_id,
                                Timestamp now);
// The backoff before the redelivery that follows failed attempt number `attempt` (1-based).
int64_t retry_backoff_us(const std::optional<RetryPolicy>& policy, int attempt);

}  // namespace backbone
