// Checks shared by every Broker backend: names, policy ranges and message limits follow Google
// Cloud Pub/Sub's, so that the same configuration is valid on every backend. Also the port's
// answers for a backend that serves every subscription whole (buckets, serve_buckets).
#include <algorithm>

#include "backbone/broker.h"

namespace backbone {
namespace {

Error invalid(std::string msg, std::string where) {
  return make_error(Errc::kInvalidArgument, std::move(msg), std::move(where));
}

}  // namespace

Result<void> validate_resource_name(std::string_view name, const char* what) {
  // Pub/Sub: [A-Za-z][A-Za-z0-9-_.~+%]{2,254}, not starting with "goog".
  auto ok_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~' || c == '+' || c == '%';
  };
  const bool letter =
      !name.empty() && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'));
  if (name.size() < 3 || name.size() > 255 || !letter ||
      !std::all_of(name.begin(), name.end(), ok_char) || name.starts_with("goog")) {
    return invalid("\"" + std::string(name.substr(0, 80)) +
                       "\" is not a valid name: 3-255 characters of [A-Za-z0-9-_.~+%], starting "
                       "with a letter, not with \"goog\"",
                   what);
  }
  return {};
}

Result<void> validate_topic_config(const TopicConfig& c) {
  BACKBONE_TRY(validate_resource_name(c.name, "topic"));
  if (c.retention_us && (*c.retention_us < 10 * kMinute || *c.retention_us > 31 * kDay)) {
    return invalid("must be between 10 minutes and 31 days", "message_retention_duration");
  }
  return {};
}

Result<void> validate_subscription_config(const SubscriptionConfig& c) {
  BACKBONE_TRY(validate_resource_name(c.name, "subscription"));
  BACKBONE_TRY(validate_resource_name(c.topic, "topic"));
  if (c.ack_deadline_us < 10 * kSecond || c.ack_deadline_us > 600 * kSecond) {
    return invalid("must be between 10 and 600 seconds", "ack_deadline");
  }
  if (c.retry) {
    if (c.retry->min_backoff_us < 0 || c.retry->min_backoff_us > 600 * kSecond) {
      return invalid("must be between 0 and 600 seconds", "retry_policy.minimum_backoff");
    }
    if (c.retry->max_backoff_us < c.retry->min_backoff_us ||
        c.retry->max_backoff_us > 600 * kSecond) {
      return invalid("must be between minimum_backoff and 600 seconds",
                     "retry_policy.maximum_backoff");
    }
  }
  if (c.dead_letter) {
    BACKBONE_TRY(validate_resource_name(c.dead_letter->topic, "dead_letter_policy.topic"));
    if (c.dead_letter->max_delivery_attempts < 5 || c.dead_letter->max_delivery_attempts > 100) {
      return invalid("must be between 5 and 100", "dead_letter_policy.max_delivery_attempts");
    }
  }
  if (c.retention_us < 10 * kMinute || c.retention_us > 31 * kDay) {
    return invalid("must be between 10 minutes and 31 days", "message_retention_duration");
  }
  return {};
}

Result<void> validate_subscription_update(const SubscriptionConfig& current,
                                          const SubscriptionConfig& next) {
  BACKBONE_TRY(validate_subscription_config(next));
  if (next.topic != current.topic) {
    return invalid("a subscription's topic cannot change", "topic");
  }
  if (next.ordered != current.ordered) {
    return invalid("message ordering cannot change after creation", "enable_message_ordering");
  }
  if (next.detached != current.detached) {
    return invalid("only DetachSubscription detaches a subscription", "detached");
  }
  if (next.ordered && next.key_delivery != current.key_delivery) {
    return invalid("an ordering key's delivery cannot change after creation", "key_delivery");
  }
  return {};
}

void add_dead_letter_attributes(Attributes& attrs, int attempt, const std::string& reason,
                                std::string_view subscription, std::string_view message_id,
                                Timestamp now) {
  attrs[std::string(kAttrDeliveryAttempt)] = std::to_string(attempt);
  attrs[std::string(kAttrLastError)] = reason.substr(0, kMaxAttributeValueBytes);
  attrs[std::string(kAttrSourceSubscription)] = std::string(subscription);
  attrs[std::string(kAttrSourceMessageId)] = std::string(message_id);
  attrs[std::string(kAttrDeadLetteredAt)] = now.to_rfc3339();
}

Result<void> validate_delay(int64_t us, const char* field) {
  if (us < 0 || us > 600 * kSecond) return invalid("must be between 0 and 600 seconds", field);
  return {};
}

namespace {

// The first thing wrong with message `m`, as an error about its field (no item yet).
Result<void> validate_message(const OutgoingMessage& m) {
  if (m.data.empty() && m.attributes.empty()) {
    return invalid("a message needs data or attributes", "");
  }
  if (m.attributes.size() > kMaxAttributes)
    return invalid("more than 100 attributes", "attributes");
  size_t bytes = m.data.size();
  for (const auto& [k, v] : m.attributes) {
    if (k.empty() || k.size() > kMaxAttributeKeyBytes) {
      return invalid("attribute keys are 1 to 256 bytes", "attributes");
    }
    if (v.size() > kMaxAttributeValueBytes) {
      return invalid("attribute values are at most 1024 bytes", "attributes." + k);
    }
    bytes += k.size() + v.size();
  }
  if (m.ordering_key.size() > kMaxOrderingKeyBytes) {
    return invalid("at most 1024 bytes", "ordering_key");
  }
  if (bytes > kMaxMessageBytes) return make_error(Errc::kTooLarge, "a message is at most 10 MiB");
  return {};
}

}  // namespace

Result<void> validate_messages(std::span<const OutgoingMessage> messages) {
  if (messages.empty()) return invalid("at least one message is needed", "messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (auto r = validate_message(messages[i]); !r.ok()) {
      return Error(r.error()).at_item("messages", i);
    }
  }
  return {};
}

Result<void> validate_snapshot_update(const SnapshotConfig& current, const SnapshotConfig& next) {
  if (next.name != current.name) return invalid("a snapshot's name cannot change", "name");
  if (next.topic != current.topic) return invalid("a snapshot's topic cannot change", "topic");
  if (next.expire_time > current.expire_time) {
    return invalid("can only move earlier: a snapshot keeps its messages until " +
                       current.expire_time.to_rfc3339(),
                   "expire_time");
  }
  return {};
}

Result<Timestamp> snapshot_expiry(std::optional<Timestamp> oldest_unacked_published,
                                  Timestamp now) {
  const Timestamp expire = oldest_unacked_published.value_or(now).plus_micros(kSnapshotLifeUs);
  if (expire.micros() - now.micros() < kHour) {
    return make_error(Errc::kImmutable,
                      "the subscription's oldest unacked message is too old: a snapshot of it "
                      "would expire within the hour");
  }
  return expire;
}

Error beyond_retention_error(std::string_view subscription, Timestamp time,
                             std::optional<Timestamp> held_from) {
  return make_error(Errc::kImmutable,
                    "cannot seek subscription " + std::string(subscription) + " to " +
                        time.to_rfc3339() + ": messages published since are no longer held" +
                        (held_from ? " (the oldest held was published at " +
                                         held_from->to_rfc3339() + "; seek to then or later)"
                                   : " (none is held: seek to now or later)"));
}

Error detached_error(std::string_view subscription) {
  return make_error(Errc::kImmutable, "subscription " + std::string(subscription) +
                                          " is detached from its topic: it receives nothing more");
}

std::string_view key_delivery_name(KeyDelivery d) {
  return d == KeyDelivery::kStreamed ? "streamed" : "one-at-a-time";
}

std::optional<KeyDelivery> key_delivery_from_name(std::string_view name) {
  if (name == "one-at-a-time") return KeyDelivery::kOneAtATime;
  if (name == "streamed") return KeyDelivery::kStreamed;
  return std::nullopt;
}

std::string_view schema_type_name(SchemaType type) {
  return type == SchemaType::kAvro ? "AVRO" : "PROTOCOL_BUFFER";
}

std::string_view schema_encoding_name(SchemaEncoding encoding) {
  return encoding == SchemaEncoding::kJson ? "JSON" : "BINARY";
}

std::optional<SchemaType> schema_type_from_name(std::string_view name) {
  if (name == "AVRO") return SchemaType::kAvro;
  if (name == "PROTOCOL_BUFFER") return SchemaType::kProtocolBuffer;
  return std::nullopt;
}

std::optional<SchemaEncoding> schema_encoding_from_name(std::string_view name) {
  if (name == "JSON") return SchemaEncoding::kJson;
  if (name == "BINARY") return SchemaEncoding::kBinary;
  return std::nullopt;
}

std::string format_duration(int64_t us) {
  if (us >= kDay && us % kDay == 0) return std::to_string(us / kDay) + "d";
  if (us % kSecond == 0) return std::to_string(us / kSecond) + "s";
  return std::to_string(us / 1000) + "ms";
}

int64_t retry_backoff_us(const std::optional<RetryPolicy>& policy, int attempt) {
  if (!policy || attempt < 1) return 0;
  int64_t d = policy->min_backoff_us;
  for (int i = 1; i < attempt && d < policy->max_backoff_us; ++i) {
    d = d == 0 ? 0 : d * 2;
  }
  return std::min(d, policy->max_backoff_us);
}

std::optional<bool> SubscriptionStats::idle() const {
  if (undelivered && in_flight) return *undelivered + *in_flight == 0;
  if (client) return client->in_flight + client->held == 0;
  return std::nullopt;
}

Result<uint32_t> Broker::buckets(std::string_view subscription) {
  BACKBONE_TRY(get_subscription(subscription));
  return uint32_t{0};
}

Result<void> Broker::serve_buckets(std::string_view subscription,
                                   const std::map<uint32_t, uint64_t>& /*buckets*/) {
  BACKBONE_TRY(get_subscription(subscription));
  return make_error(Errc::kInvalidArgument,
                    "subscription " + std::string(subscription) +
                        " is not split into buckets: this broker serves it whole");
}

}  // namespace backbone
