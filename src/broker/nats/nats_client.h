// NatsClient: the one connection of a NATS broker backend to its cluster, and the few JetStream
// operations the backend uses, with libnats' status codes turned into Result errors:
//
//   stream not found            kNotFound
//   wrong last sequence (fence) kConflict
//   permission violation        kPermissionDenied (a publish that the server refuses is
//                               never answered: the refusal reported on the connection ends
//                               the wait)
//   timeouts, no server,
//   no responders, closed       kUnavailable
//
// The connection reconnects on its own (to any server of the cluster); calls made while it is
// down fail with kUnavailable after their timeout.
//
// Thread-safety: thread-safe (libnats connections and JetStream contexts are).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backbone/result.h"
#include "broker/nats/nats_url.h"

struct __natsConnection;
struct __jsCtx;
struct __kvStore;
struct __natsSubscription;

namespace backbone::nats {

struct StreamSpec {
  std::string name;
  std::string subject;
  int replicas = 1;
  int64_t max_age_ms = 0;     // 0: no limit
  int64_t dup_window_ms = 0;  // 0: the server's default (2 min)
};

struct StreamState {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t messages = 0;
  std::string leader;  // the server that leads its replicas; "" when not clustered
};

struct OutgoingNatsMessage {
  std::string subject;
  std::string msg_id;  // Nats-Msg-Id: a re-sent publish within the duplicate window is dropped
  std::string payload;
};

struct FetchedMessage {
  uint64_t seq = 0;
  std::string subject;
  std::string payload;
};

class StreamReader;
struct PublisherPool;

class NatsClient {
 public:
  static Result<std::unique_ptr<NatsClient>> connect(const NatsUrl& url);
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  // Creates the stream, or does nothing if it exists with this spec.
  Result<void> add_stream(const StreamSpec& spec);
  // kNotFound if it does not exist.
  Result<void> delete_stream(const std::string& name);
  Result<StreamState> stream_state(const std::string& name);
  // Removes the messages below `seq` (0: all of them; only those on `subject`, when given).
  Result<void> purge_below(const std::string& stream, uint64_t seq,
                           const std::string& subject = {});
  // The sequence of the last message on `subject` in `stream`; 0 when it has none.
  Result<uint64_t> last_seq_of(const std::string& stream, const std::string& subject);
  // The message at `seq` in `stream`; kNotFound when the stream holds none there.
  Result<FetchedMessage> get_message(const std::string& stream, uint64_t seq);

  // Publishes every message, pipelined, and waits until JetStream has stored all of them.
  // Returns each one's stream sequence (a dropped duplicate's is the original's).
  Result<std::vector<uint64_t>> publish(std::span<const OutgoingNatsMessage> messages);
  // Publishes one message only if the last message on its subject is at sequence
  // `expected_last_seq` (kConflict otherwise; 0: no condition): how a journal's single writer
  // is fenced. A journal is one subject (a bucket's, where a subscription is split).
  Result<uint64_t> publish_fenced(const std::string& subject, const std::string& payload,
                                  uint64_t expected_last_seq);

  // Reads `stream` (only `subject`, which may be a wildcard) in order from sequence `from`, through
  // an ordered consumer: ephemeral, unacknowledged, pushed with flow control. It holds up to the
  // URL's reader_buffer messages; beyond, libnats drops what arrives, so a gap between two
  // sequences it delivers is either one in the stream (messages removed by age) or dropped
  // messages, which the owner reads again with a new reader.
  Result<std::unique_ptr<StreamReader>> reader(const std::string& stream,
                                               const std::string& subject, uint64_t from);

  // The key-value bucket `bucket`, created (with `replicas`) if missing.
  Result<void> open_bucket(const std::string& bucket, int replicas);
  // kAlreadyExists if the key exists.
  Result<void> kv_create(const std::string& key, const std::string& value);
  // kNotFound if absent.
  Result<std::pair<std::string, uint64_t>> kv_get(const std::string& key);
  // kConflict if the key's revision is no longer `revision`.
  Result<void> kv_update(const std::string& key, const std::string& value, uint64_t revision);
  Result<void> kv_delete(const std::string& key);
  Result<std::vector<std::string>> kv_keys();

  const NatsUrl& url() const { return url_; }
  // The largest message payload the server takes (its max_payload; 1 MiB unless configured).
  int64_t max_payload() const;

 private:
  friend class StreamReader;
  explicit NatsClient(NatsUrl url);
  // Keeps an error that arrived on the connection if it is a permission violation.
  void note_async_error(std::string text, bool not_permitted);
  uint64_t violation_count();
  // kPermissionDenied if a violation on `subject` was reported after `since` violations.
  std::optional<Error> refusal(const std::string& subject, uint64_t since);

  std::mutex violations_mu_;
  std::deque<std::string> violations_;  // GUARDED_BY(violations_mu_), the last 64
  uint64_t violation_count_ = 0;        // GUARDED_BY(violations_mu_)
  NatsUrl url_;
  std::unique_ptr<PublisherPool> pool_;
  __natsConnection* conn_ = nullptr;  // requests and publishes
  __jsCtx* js_ = nullptr;
  __natsConnection* read_conn_ = nullptr;  // topic readers' pushed messages
  __jsCtx* read_js_ = nullptr;
  __kvStore* kv_ = nullptr;
};

// Reads one stream in order. Thread-safety: one thread at a time.
class StreamReader {
 public:
  ~StreamReader();
  // Up to `max` messages from where the previous fetch stopped. It waits up to wait_ms for the
  // first one (not at all for 0), then takes only what has already arrived. Delivery is
  // asynchronous: a message that the stream has stored may not have arrived yet, so a reader
  // that must see everything up to a sequence waits for it (see NatsSubscription::fill).
  Result<std::vector<FetchedMessage>> fetch(int max, int64_t wait_ms);
  // Whether libnats dropped messages of this reader (its buffer was full) since the last call:
  // the reader is then useless past the last message fetched.
  bool lost_messages();
  // The highest stream sequence known to exist from what was fetched (each message tells how
  // many followed it in the stream when it was sent); 0 before the first.
  uint64_t known_last_seq() const { return known_last_; }

 private:
  friend class NatsClient;
  StreamReader() = default;
  __natsSubscription* sub_ = nullptr;
  int64_t dropped_seen_ = 0;
  bool lost_ = false;
  uint64_t known_last_ = 0;
};

}  // namespace backbone::nats
