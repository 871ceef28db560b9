#include "backbone/broker.h"

#include "broker/embedded/embedded_broker.h"
#include "broker/nats/nats_broker.h"
#include "broker/nats/nats_url.h"
#include "broker/pubsub/pubsub_broker.h"
#include "broker/pubsub/pubsub_url.h"

namespace backbone {

Result<std::unique_ptr<Broker>> Broker::open(const BrokerOptions& options) {
  const std::string_view url = options.url;
  if (url.starts_with("embedded://")) {
    auto o = embedded::parse_embedded_url(url);
    if (!o.ok()) return o.error();
    o->clock = options.clock;
    return embedded::open_embedded_broker(*o);
  }
  if (url.starts_with("nats://")) {
    auto o = nats::parse_nats_url(url);
    if (!o.ok()) return o.error();
    return nats::open_nats_broker(*o, options.clock, options.buckets);
  }
  if (url.starts_with("pubsub://")) {
    auto o = pubsub::parse_pubsub_url(url);
    if (!o.ok()) return o.error();
    return pubsub::open_pubsub_broker(*o, options.clock);
  }
  return make_error(Errc::kInvalidArgument,
                    "broker URL \"" + options.url +
                        "\": want embedded://path, nats://host:port or pubsub://project",
                    "broker");
}

}  // namespace backbone
