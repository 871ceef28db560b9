// The Broker conformance suite, written once and instantiated for every backend, on a
// ManualClock: no test sleeps. A backend provides a BrokerHarness that names a fresh broker.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "backbone/broker.h"

namespace backbone::testing {

class BrokerHarness {
 public:
  virtual ~BrokerHarness() = default;
  // The URL of a broker that exists for this harness alone. A backend whose server is not
  // running makes no harness (nullptr): the suite skips, or fails under `make test`.
  virtual std::string url() = 0;
  // Called before url() with the suite's clock. A harness that starts the server whose delivery
  // rules the backend uses (backbone's own Pub/Sub front, for pubsub://) runs it on this clock.
  virtual void run_on(const Clock& /*clock*/) {}
  // BrokerOptions::buckets of the brokers opened for the suite.
  virtual uint32_t buckets() { return 0; }
};

struct BrokerBackend {
  std::string name;
  std::function<std::unique_ptr<BrokerHarness>()> make;
  // Cases this backend cannot pass, by test name, each with why: they are skipped with the
  // reason shown (a backend over a wire protocol that lacks what the case checks).
  std::map<std::string, std::string> cannot;
};

inline void PrintTo(const BrokerBackend& b, std::ostream* os) { *os << b.name; }

class BrokerConformance : public ::testing::TestWithParam<BrokerBackend> {
 protected:
  void SetUp() override;
  void reopen();  // closes the broker and opens it again, as after a restart
  Broker& b() { return *broker_; }

  // Creates topic `topic` and subscription `sub` on it with `config`'s policies.
  void make_sub(const std::string& topic, const std::string& sub, SubscriptionConfig config = {});
  std::vector<std::string> publish(
      const std::string& topic, const std::vector<std::pair<std::string, std::string>>& key_data);
  std::vector<ReceivedMessage> pull(const std::string& sub, size_t max = 100);
  void ack(const std::string& sub, const std::vector<ReceivedMessage>& msgs);
  void nack(const std::string& sub, const ReceivedMessage& m, const std::string& reason = "failed");

  ManualClock clock_{Timestamp::from_millis(1'795'838'706'000)};
  std::unique_ptr<BrokerHarness> harness_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace backbone::testing
