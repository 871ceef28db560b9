// The `pubsub://` backend of the Broker port: Google Cloud Pub/Sub (or an emulator, or
// backbone's own Pub/Sub front) through its gRPC API. doc/broker.md has the mapping.
//
//  - Time is the server's: the delivery rules (deadlines, backoff, dead-lettering, ordering,
//    retention) run there, and the injected Clock only stamps dead letters.
//  - nack and dead_letter keep their reason: the delivery that a nack would fail for the last
//    time (its attempt has reached the dead-letter policy's maximum), and any delivery given to
//    dead_letter(), is published to the dead-letter topic by this backend, with the
//    backbone.* attributes and the reason, and then acked. (A deadline that expires for the last
//    time is dead-lettered by the server, without a reason.) A crash between that publish and
//    the ack may dead-letter the message twice.
//  - ack returns the number of ack ids sent (Pub/Sub does not say which were current).
//  - stats: Pub/Sub's API has no backlog figures (Cloud Monitoring has them): kInvalidArgument.
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>

#include "backbone/broker.h"
#include "broker/pubsub/pubsub_url.h"

namespace backbone::pubsub {

// Connects lazily: a server that is down fails the first call with kUnavailable.
Result<std::unique_ptr<Broker>> open_pubsub_broker(const PubsubUrl& url, const Clock* clock);

}  // namespace backbone::pubsub
