// HttpTarget: `backbone stress --url`. The workload goes to a running server through its HTTP
// API, the way a client would, and the verifier's sources are read back through it too: the
// merged topic through the sync subscription's pull and acknowledge routes (as an external
// consumer reads it), the dead letters from GET /v1/envs/{env}/dlq. The sync subscription is
// consumed, so point it at a server whose sync consumers are idle.
//
// Thread-safety: not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backbone/event.h"
#include "backbone/result.h"
#include "stress/verify.h"

namespace httplib {
class Client;
}

namespace backbone::stress {

// The body of POST /v1/envs/{env}/events for a batch of drafts (a JSON array).
std::string ingest_body(std::span<const EventDraft> drafts);

class HttpTarget {
 public:
  // `url`: http://host:port. The token needs the publish, read and subscribe roles of `env`.
  static Result<std::unique_ptr<HttpTarget>> connect(const std::string& url, std::string token,
                                                     std::string env);
  ~HttpTarget();

  // Posts the drafts in order, `batch` per request; returns the ids the server answered.
  // `progress` is called with the number sent so far.
  Result<std::vector<EventId>> ingest(std::span<const EventDraft> drafts, size_t batch,
                                      const std::function<void(size_t)>& progress);
  // Posts `n` malformed events (one per request): the server must refuse each with 400.
  // Returns how many it accepted (0 when all were refused).
  Result<size_t> send_malformed(size_t n);
  // Whether the merge stage has nothing left and the retry stage nothing in flight.
  Result<bool> stages_idle();
  // Sets in.next_merged and in.dead_letters. The target must outlive `in`.
  void use_for(VerifyInput& in);

 private:
  HttpTarget() = default;
  std::unique_ptr<httplib::Client> client_;
  std::string env_;
  std::vector<std::pair<std::string, std::string>> auth_;
};

}  // namespace backbone::stress
