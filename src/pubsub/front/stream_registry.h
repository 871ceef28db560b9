// StreamRegistry: the open StreamingPull calls of one front, by subscription, so that acks and
// deadline changes sent by unary calls reach the stream that delivered those messages. Google's
// clients ack through unary Acknowledge and ModifyAckDeadline calls, not on the stream; without
// this, a stream's flow control would count those messages as outstanding until their lease
// ran out.
//
// It also keeps Google's rule for ordered subscriptions whose keys stream
// (KeyDelivery::kStreamed): a key is on one stream at a time. Google's clients put a key's
// messages in order per stream, so two streams that each got some of a key would hand them to
// the application out of order. Such a subscription's streams pull through pull_keyed(), one at
// a time; a message whose key another stream holds (a delivery of that key not yet acked,
// nacked or expired there) is passed to that stream, which writes it after what it has, and a
// key is free again once its stream holds none of its deliveries.
//
// Thread-safety: thread-safe. A stream's release and extend may be called from any thread, and
// never while the registry's caller holds the stream's own lock. Locks: mu_, then a
// subscription's keys lock; a stream's own lock is never held while calling in.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backbone/broker.h"

namespace backbone::pubsub {

class StreamRegistry {
 public:
  class Stream {
   public:
    // The deliveries `ack_ids` were acked or nacked: they no longer count. Returns the ordering
    // key of each that this stream held and that had one.
    virtual std::vector<std::string> release(std::span<const std::string> ack_ids) = 0;
    // Their deadline moved to `deadline_us` from now.
    virtual void extend(std::span<const std::string> ack_ids, int64_t deadline_us) = 0;

   protected:
    ~Stream() = default;
  };

  void add(const std::string& subscription, Stream* stream);
  // Also frees the keys the stream held; what was passed to it and not taken yet stays leased
  // on the broker until its deadline, and then comes again.
  void remove(const std::string& subscription, Stream* stream);

  // Up to `max` deliveries for `stream` of a subscription whose keys stream: first those that
  // other streams' pulls passed to it, in the order they were pulled, then its own pull of the
  // broker (waiting up to `wait_us` only when nothing was passed to it), without the messages
  // whose keys other streams hold. Each returned message with a key counts as held by
  // `stream` until keys_released() says otherwise.
  Result<std::vector<ReceivedMessage>> pull_keyed(Broker& broker, const std::string& subscription,
                                                  Stream* stream, size_t max, int64_t wait_us);
  // `stream` no longer holds one delivery of each of `keys` (its leases expired).
  void keys_released(std::string_view subscription, Stream* stream,
                     const std::vector<std::string>& keys);

  // Acks on the broker, then frees the acked deliveries in the streams that hold them. Every
  // ack of the front goes through here, whether it came on a stream or in a unary call.
  Result<void> ack(Broker& broker, std::string_view subscription,
                   std::span<const std::string> ack_ids);
  // Moves the deadlines on the broker (0 is a nack, which frees the deliveries), then tells the
  // streams that hold them.
  Result<void> modify_ack_deadline(Broker& broker, std::string_view subscription,
                                   std::span<const std::string> ack_ids, int64_t deadline_us);

 private:
  void release(std::string_view subscription, std::span<const std::string> ack_ids);
  void extend(std::string_view subscription, std::span<const std::string> ack_ids,
              int64_t deadline_us);
  struct Keys {
    struct Holder {
      Stream* stream = nullptr;
      size_t deliveries = 0;
    };
    std::mutex mu;
    std::unordered_map<std::string, Holder> held;                      // GUARDED_BY(mu)
    std::unordered_map<Stream*, std::vector<ReceivedMessage>> passed;  // GUARDED_BY(mu)
  };
  std::shared_ptr<Keys> keys_of(std::string_view subscription, bool create);
  static void drop(Keys& k, Stream* stream, const std::vector<std::string>& keys);  // k.mu held

  std::mutex mu_;
  std::multimap<std::string, Stream*, std::less<>> streams_;        // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<Keys>, std::less<>> keys_;  // GUARDED_BY(mu_)
};

}  // namespace backbone::pubsub
