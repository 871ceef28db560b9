#include "backbone/streaming_consumer.h"

#include <chrono>
#include <exception>

namespace backbone {

Result<void> settle(Broker& broker, std::string_view subscription, const ReceivedMessage& m,
                    const ConsumerDecision& d) {
  switch (d.outcome) {
    case ConsumerDecision::Outcome::kAck: {
      auto r = broker.ack(subscription, std::span(&m.ack_id, 1));
      if (!r.ok()) return r.error();
      return {};
    }
    case ConsumerDecision::Outcome::kNack:
      return broker.nack(subscription, std::span(&m.ack_id, 1), d.delay_us, d.reason);
    case ConsumerDecision::Outcome::kDeadLetter:
      return broker.dead_letter(subscription, m.ack_id, d.reason);
  }
  return {};
}

StreamingConsumer::StreamingConsumer(Broker& broker, std::string subscription, Handler handler,
                                     Options options, ErrorHandler on_error)
    : StreamingConsumer(
          broker, std::move(subscription),
          BatchHandler([h = std::move(handler)](std::span<const ReceivedMessage> batch) {
            std::vector<ConsumerDecision> out;
            out.reserve(batch.size());
            for (const ReceivedMessage& m : batch) {
              try {
                out.push_back(h(m));
              } catch (const std::exception& e) {
                out.push_back(ConsumerDecision::nack(std::string("handler threw: ") + e.what()));
              } catch (...) {
                out.push_back(ConsumerDecision::nack("handler threw"));
              }
            }
            return out;
          }),
          options, std::move(on_error)) {}

StreamingConsumer::StreamingConsumer(Broker& broker, std::string subscription, BatchHandler handler,
                                     Options options, ErrorHandler on_error)
    : broker_(broker),
      subscription_(std::move(subscription)),
      handler_(std::move(handler)),
      options_(options),
      on_error_(std::move(on_error)) {}

StreamingConsumer::~StreamingConsumer() { stop(); }

void StreamingConsumer::start() {
  stop_ = false;
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) {
    workers_.emplace_back([this] { run(); });
  }
}

void StreamingConsumer::stop() {
  stop_ = true;
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void StreamingConsumer::run() {
  auto report = [&](const Error& e) {
    if (stop_) return;  // a call cut short by the stop is no failure
    if (on_error_) on_error_(e);
    // The broker is down or closing: do not spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  };
  std::vector<std::string> acks;
  while (!stop_) {
    auto got = broker_.pull(subscription_, options_.max_messages, options_.wait_us);
    if (!got.ok()) {
      report(got.error());
      continue;
    }
    acks.clear();
    if (got->empty()) continue;
    std::vector<ConsumerDecision> decisions;
    try {
      decisions = handler_(*got);
    } catch (const std::exception& e) {
      decisions.clear();
      report(make_error(Errc::kInternal, std::string("handler threw: ") + e.what()));
    } catch (...) {
      decisions.clear();
      report(make_error(Errc::kInternal, "handler threw"));
    }
    // A handler that threw (or answered for fewer messages) leaves the rest to be redelivered.
    decisions.resize(got->size(), ConsumerDecision::nack("the handler gave no decision"));
    for (size_t i = 0; i < got->size(); ++i) {
      const ReceivedMessage& m = (*got)[i];
      const ConsumerDecision& d = decisions[i];
      if (d.outcome == ConsumerDecision::Outcome::kAck) {
        acks.push_back(m.ack_id);  // sent as one batch after the pull
      } else if (auto r = settle(broker_, subscription_, m, d); !r.ok()) {
        report(r.error());
      }
    }
    if (!acks.empty()) {
      auto r = broker_.ack(subscription_, acks);
      if (!r.ok()) report(r.error());
    }
  }
}

}  // namespace backbone
