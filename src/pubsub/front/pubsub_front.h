// PubsubFront: the google.pubsub.v1 gRPC server of `backbone serve` (SPEC §6): the Publisher,
// Subscriber and Schema services (publisher_service.h, subscriber_service.h,
// schema_service.h) over the Broker port,
// with the access rules of front_access.h. Google's client libraries use it unchanged with
// PUBSUB_EMULATOR_HOST pointed at it. doc/pubsub_front.md is the user's guide.
//
// This header keeps gRPC and the generated protobuf code out of its includers.
//
// Thread-safety: start and shutdown from one thread; the services run on gRPC's threads.
#pragma once

#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "backbone/broker.h"
#include "backbone/topology.h"
#include "pubsub/front/front_access.h"

namespace backbone::pubsub {

class PubsubFront {
 public:
  // Serves on `listen` ("host:port"; port 0 picks a free one). kUnavailable when it cannot
  // bind. `broker`, `topology` and `tokens` must outlive the front.
  static Result<std::unique_ptr<PubsubFront>> start(Broker& broker, const Topology& topology,
                                                    const auth::Authenticator& tokens,
                                                    FrontOptions options,
                                                    const std::string& listen);
  ~PubsubFront();  // shutdown(0)

  // The port it listens on.
  int port() const;
  // Stops taking calls, gives those in progress up to `grace_us` (real time) to finish, then
  // cancels the rest (a cancelled StreamingPull leaves its unacked messages to their deadline).
  void shutdown(int64_t grace_us);

 private:
  struct Impl;
  explicit PubsubFront(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace backbone::pubsub
