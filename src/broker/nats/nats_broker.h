// The NATS JetStream backend of the Broker port (`nats://…`, nats_url.h); doc/broker_nats.md
// has the whole mapping. Topics are JetStream streams; the catalog of topics and subscriptions
// is a JetStream key-value bucket; each subscription's delivery state is served by the process
// that uses it (nats_subscription.h) and kept in its own journal stream.
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>

#include "backbone/broker.h"
#include "broker/nats/nats_url.h"

namespace backbone::nats {

// `buckets`: BrokerOptions::buckets.
Result<std::unique_ptr<Broker>> open_nats_broker(const NatsUrl& url, const Clock* clock,
                                                 uint32_t buckets);

}  // namespace backbone::nats
