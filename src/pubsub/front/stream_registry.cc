#include "pubsub/front/stream_registry.h"

namespace backbone::pubsub {

void StreamRegistry::add(const std::string& subscription, Stream* stream) {
  std::lock_guard lock(mu_);
  streams_.emplace(subscription, stream);
}

void StreamRegistry::remove(const std::string& subscription, Stream* stream) {
  std::lock_guard lock(mu_);
  auto [it, end] = streams_.equal_range(subscription);
  for (; it != end; ++it) {
    if (it->second == stream) {
      streams_.erase(it);
      return;
    }
  }
}

Result<void> StreamRegistry::ack(Broker& broker, std::string_view subscription,
                                 std::span<const std::string> ack_ids) {
  auto acked = broker.ack(subscription, ack_ids);
  if (!acked.ok()) return acked.error();
  release(subscription, ack_ids);
  return {};
}

Result<void> StreamRegistry::modify_ack_deadline(Broker& broker, std::string_view subscription,
                                                 std::span<const std::string> ack_ids,
                                                 int64_t deadline_us) {
  BACKBONE_TRY(broker.modify_ack_deadline(subscription, ack_ids, deadline_us));
  if (deadline_us == 0) {
    release(subscription, ack_ids);
  } else {
    extend(subscription, ack_ids, deadline_us);
  }
  return {};
}

void StreamRegistry::release(std::string_view subscription, std::span<const std::string> ack_ids) {
  std::lock_guard lock(mu_);
  auto [it, end] = streams_.equal_range(subscription);
  for (; it != end; ++it) it->second->release(ack_ids);
}

void StreamRegistry::extend(std::string_view subscription, std::span<const std::string> ack_ids,
                            int64_t deadline_us) {
  std::lock_guard lock(mu_);
  auto [it, end] = streams_.equal_range(subscription);
  for (; it != end; ++it) it->second->extend(ack_ids, deadline_us);
}

}  // namespace backbone::pubsub
