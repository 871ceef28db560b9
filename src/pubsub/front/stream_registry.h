// StreamRegistry: the open StreamingPull calls of one front, by subscription, so that acks and
// deadline changes sent by unary calls reach the stream that delivered those messages. Google's
// clients ack through unary Acknowledge and ModifyAckDeadline calls, not on the stream; without
// this, a stream's flow control would count those messages as outstanding until their lease
// ran out.
//
// Thread-safety: thread-safe. A stream's release and extend may be called from any thread, and
// never while the registry's caller holds the stream's own lock.
#pragma once

#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "backbone/broker.h"

namespace backbone::pubsub {

class StreamRegistry {
 public:
  class Stream {
   public:
    // The deliveries `ack_ids` were acked or nacked: they no longer count.
    virtual void release(std::span<const std::string> ack_ids) = 0;
    // Their deadline moved to `deadline_us` from now.
    virtual void extend(std::span<const std::string> ack_ids, int64_t deadline_us) = 0;

   protected:
    ~Stream() = default;
  };

  void add(const std::string& subscription, Stream* stream);
  void remove(const std::string& subscription, Stream* stream);

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
  std::mutex mu_;
  std::multimap<std::string, Stream*, std::less<>> streams_;  // GUARDED_BY(mu_)
};

}  // namespace backbone::pubsub
