#include "pubsub/front/stream_registry.h"

namespace backbone::pubsub {

void StreamRegistry::add(const std::string& subscription, Stream* stream) {
  std::lock_guard lock(mu_);
  streams_.emplace(subscription, stream);
}

void StreamRegistry::remove(const std::string& subscription, Stream* stream) {
  std::shared_ptr<Keys> k;
  {
    std::lock_guard lock(mu_);
    auto [it, end] = streams_.equal_range(subscription);
    for (; it != end; ++it) {
      if (it->second == stream) {
        streams_.erase(it);
        break;
      }
    }
    if (auto kit = keys_.find(subscription); kit != keys_.end()) {
      k = kit->second;
      if (streams_.count(subscription) == 0) keys_.erase(kit);
    }
  }
  if (!k) return;
  std::lock_guard lock(k->mu);
  std::erase_if(k->held, [&](const auto& kv) { return kv.second.stream == stream; });
  k->passed.erase(stream);
}

std::shared_ptr<StreamRegistry::Keys> StreamRegistry::keys_of(std::string_view subscription,
                                                              bool create) {
  std::lock_guard lock(mu_);
  auto it = keys_.find(subscription);
  if (it != keys_.end()) return it->second;
  if (!create) return nullptr;
  return keys_.emplace(std::string(subscription), std::make_shared<Keys>()).first->second;
}

void StreamRegistry::drop(Keys& k, Stream* stream, const std::vector<std::string>& keys) {
  for (const auto& key : keys) {
    auto it = k.held.find(key);
    if (it == k.held.end() || it->second.stream != stream) continue;
    if (--it->second.deliveries == 0) k.held.erase(it);
  }
}

Result<std::vector<ReceivedMessage>> StreamRegistry::pull_keyed(Broker& broker,
                                                                const std::string& subscription,
                                                                Stream* stream, size_t max,
                                                                int64_t wait_us) {
  const std::shared_ptr<Keys> k = keys_of(subscription, true);
  std::lock_guard lock(k->mu);
  std::vector<ReceivedMessage> out;
  if (auto it = k->passed.find(stream); it != k->passed.end()) {
    out = std::move(it->second);
    k->passed.erase(it);
  }
  if (out.size() >= max) return out;
  // The wait holds the lock: the other streams' pulls would only wait for the same messages.
  auto got = broker.pull(subscription, max - out.size(), out.empty() ? wait_us : 0);
  if (!got.ok()) {
    if (out.empty()) return got.error();
    return out;  // what was passed to it is delivered; the error comes at its next pull
  }
  for (auto& m : *got) {
    if (!m.message.ordering_key.empty()) {
      auto& h = k->held[m.message.ordering_key];
      if (h.deliveries > 0 && h.stream != stream) {
        ++h.deliveries;
        k->passed[h.stream].push_back(std::move(m));
        continue;
      }
      h.stream = stream;
      ++h.deliveries;
    }
    out.push_back(std::move(m));
  }
  return out;
}

void StreamRegistry::keys_released(std::string_view subscription, Stream* stream,
                                   const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  const std::shared_ptr<Keys> k = keys_of(subscription, false);
  if (!k) return;
  std::lock_guard lock(k->mu);
  drop(*k, stream, keys);
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
  auto kit = keys_.find(subscription);
  auto [it, end] = streams_.equal_range(subscription);
  for (; it != end; ++it) {
    const std::vector<std::string> keys = it->second->release(ack_ids);
    if (keys.empty() || kit == keys_.end()) continue;
    std::lock_guard keys_lock(kit->second->mu);
    drop(*kit->second, it->second, keys);
  }
}

void StreamRegistry::extend(std::string_view subscription, std::span<const std::string> ack_ids,
                            int64_t deadline_us) {
  std::lock_guard lock(mu_);
  auto [it, end] = streams_.equal_range(subscription);
  for (; it != end; ++it) it->second->extend(ack_ids, deadline_us);
}

}  // namespace backbone::pubsub
