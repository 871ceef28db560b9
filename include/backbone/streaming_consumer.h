// StreamingConsumer: a callback consumer on any Broker. Worker threads pull, hand the messages
// to the handler (one at a time, or the whole pull to a batch handler), and settle each the way
// the handler decides: ack, nack (with an optional delay and a reason), or dead-letter at once.
// Acks are sent in one batch per pull.
//
// Order: on an ordered subscription the broker never hands out two messages of one key at
// once, so several workers keep per-key order.
//
// Thread-safety: start and stop from one thread; the handler runs on the worker threads, so it
// must be thread-safe when `workers` > 1.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backbone/broker.h"

namespace backbone {

struct ConsumerDecision {
  enum class Outcome { kAck, kNack, kDeadLetter };
  Outcome outcome = Outcome::kAck;
  std::optional<int64_t> delay_us;  // for kNack: redelivery delay (else the retry policy's)
  std::string reason;               // for kNack and kDeadLetter: kept as the last error

  static ConsumerDecision ack() { return {}; }
  static ConsumerDecision nack(std::string reason, std::optional<int64_t> delay = std::nullopt) {
    return {Outcome::kNack, delay, std::move(reason)};
  }
  static ConsumerDecision dead_letter(std::string reason) {
    return {Outcome::kDeadLetter, std::nullopt, std::move(reason)};
  }
};

// Settles one delivery as `decision` says (shared by StreamingConsumer and step-by-step drivers).
// An ack is sent at once; StreamingConsumer batches its acks instead.
Result<void> settle(Broker& broker, std::string_view subscription, const ReceivedMessage& m,
                    const ConsumerDecision& decision);

class StreamingConsumer {
 public:
  using Handler = std::function<ConsumerDecision(const ReceivedMessage&)>;
  // Decides a whole pull: one decision per message, in order.
  using BatchHandler =
      std::function<std::vector<ConsumerDecision>(std::span<const ReceivedMessage>)>;
  // Called when the broker fails (the worker backs off and retries); not for a call that
  // fails once stop() was asked, as one cut short by it does.
  using ErrorHandler = std::function<void(const Error&)>;

  struct Options {
    size_t workers = 1;
    size_t max_messages = 100;  // per pull
    int64_t wait_us = 100'000;  // how long a pull waits for messages (real time)
  };

  // `broker` must outlive the consumer.
  StreamingConsumer(Broker& broker, std::string subscription, Handler handler, Options options,
                    ErrorHandler on_error = nullptr);
  StreamingConsumer(Broker& broker, std::string subscription, BatchHandler handler, Options options,
                    ErrorHandler on_error = nullptr);
  ~StreamingConsumer();  // stops

  void start();
  // Lets every worker finish the messages it holds, then joins them.
  void stop();

 private:
  void run();
  Broker& broker_;
  std::string subscription_;
  BatchHandler handler_;
  Options options_;
  ErrorHandler on_error_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

}  // namespace backbone
