// What the tests of a `serve` under faults share: subscriptions that watch its sandbox topics,
// the wait for its pipeline to drain, and the stress verifier over its store and broker.
//
// Thread-safety: free functions; call them from the test thread.
#pragma once

#include <string>
#include <vector>

#include "backbone/broker.h"
#include "backbone/event_id.h"
#include "stress/verify.h"

namespace backbone::testing {

// Subscriptions made before the run: every message of the sandbox's merged topic in order (for
// the order check), every copy published to its raw topic, and every dead letter (serve's DLQ
// inspector holds those of the inspect subscription).
struct Watchers {
  std::string merged;
  std::string raw;
  std::string dlq;
};

// Provisions the built-in topology of `envs` in the broker `broker` names with the watchers.
// Non-fatal failures are reported through gtest; the result's names are set either way.
Watchers provision_watched(const BrokerOptions& broker, const std::vector<std::string>& envs);
inline Watchers provision_watched(const std::string& broker_url,
                                  const std::vector<std::string>& envs) {
  BrokerOptions o;
  o.url = broker_url;
  return provision_watched(o, envs);
}

// Waits at most `ms` until the sandbox merge subscription of the serve on `port` holds nothing
// and the store at `sandbox_store_url` has no unprocessed event. "" once drained; else what is
// left, to print.
std::string wait_drained(int port, const std::string& token, const std::string& sandbox_store_url,
                         int ms);

// The stress verifier over the sandbox store at `sandbox_store_url` and `broker` (the serve
// stopped), for the events `sent`. Its violations, one per line, are in `problems`.
Result<stress::VerifyReport> verify_run(const std::string& sandbox_store_url, Broker& broker,
                                        const Watchers& watchers, const std::vector<EventId>& sent,
                                        std::string& problems);

}  // namespace backbone::testing
