// ForwardingBroker: a Broker that passes every call to another one, for decorators that change a
// few calls and keep the rest (server::SpreadBroker, and brokers in tests that stand for another
// process's view of a shared one). A subclass overrides what it changes.
//
// Thread-safety: as the inner broker's (thread-safe for every backend).
#pragma once

#include "backbone/broker.h"

namespace backbone {

class ForwardingBroker : public Broker {
 public:
  // `inner` must outlive this broker.
  explicit ForwardingBroker(Broker& inner) : inner_(inner) {}

  Result<void> create_topic(const TopicConfig& c) override { return inner_.create_topic(c); }
  Result<TopicConfig> get_topic(std::string_view n) override { return inner_.get_topic(n); }
  Result<std::vector<TopicConfig>> list_topics() override { return inner_.list_topics(); }
  Result<void> update_topic(const TopicConfig& c) override { return inner_.update_topic(c); }
  Result<void> delete_topic(std::string_view n) override { return inner_.delete_topic(n); }
  Result<void> create_subscription(const SubscriptionConfig& c) override {
    return inner_.create_subscription(c);
  }
  Result<SubscriptionConfig> get_subscription(std::string_view n) override {
    return inner_.get_subscription(n);
  }
  Result<std::vector<SubscriptionConfig>> list_subscriptions() override {
    return inner_.list_subscriptions();
  }
  Result<void> update_subscription(const SubscriptionConfig& c) override {
    return inner_.update_subscription(c);
  }
  Result<SnapshotConfig> create_snapshot(std::string_view n, std::string_view s,
                                         const Attributes& l) override {
    return inner_.create_snapshot(n, s, l);
  }
  Result<SnapshotConfig> get_snapshot(std::string_view n) override {
    return inner_.get_snapshot(n);
  }
  Result<std::vector<SnapshotConfig>> list_snapshots() override { return inner_.list_snapshots(); }
  Result<void> update_snapshot(const SnapshotConfig& c) override {
    return inner_.update_snapshot(c);
  }
  Result<void> delete_snapshot(std::string_view n) override { return inner_.delete_snapshot(n); }
  Result<void> seek_to_time(std::string_view s, Timestamp t) override {
    return inner_.seek_to_time(s, t);
  }
  Result<void> seek_to_snapshot(std::string_view s, std::string_view n) override {
    return inner_.seek_to_snapshot(s, n);
  }
  Result<SchemaConfig> create_schema(const SchemaConfig& c) override {
    return inner_.create_schema(c);
  }
  Result<SchemaConfig> commit_schema(const SchemaConfig& c) override {
    return inner_.commit_schema(c);
  }
  Result<SchemaConfig> get_schema(std::string_view n, std::string_view r) override {
    return inner_.get_schema(n, r);
  }
  Result<std::vector<SchemaConfig>> list_schemas() override { return inner_.list_schemas(); }
  Result<std::vector<SchemaConfig>> list_schema_revisions(std::string_view n) override {
    return inner_.list_schema_revisions(n);
  }
  Result<void> delete_schema(std::string_view n) override { return inner_.delete_schema(n); }
  Result<void> delete_schema_revision(std::string_view n, std::string_view r) override {
    return inner_.delete_schema_revision(n, r);
  }
  Result<void> detach_subscription(std::string_view n) override {
    return inner_.detach_subscription(n);
  }
  Result<void> delete_subscription(std::string_view n) override {
    return inner_.delete_subscription(n);
  }
  Result<std::vector<std::string>> publish(std::string_view topic,
                                           std::span<const OutgoingMessage> messages) override {
    return inner_.publish(topic, messages);
  }
  Result<std::vector<ReceivedMessage>> pull(std::string_view s, size_t max,
                                            int64_t wait_us = 0) override {
    return inner_.pull(s, max, wait_us);
  }
  Result<size_t> ack(std::string_view s, std::span<const std::string> ids) override {
    return inner_.ack(s, ids);
  }
  Result<void> nack(std::string_view s, std::span<const std::string> ids,
                    std::optional<int64_t> delay_us = std::nullopt,
                    std::string_view reason = {}) override {
    return inner_.nack(s, ids, delay_us, reason);
  }
  Result<void> modify_ack_deadline(std::string_view s, std::span<const std::string> ids,
                                   int64_t deadline_us) override {
    return inner_.modify_ack_deadline(s, ids, deadline_us);
  }
  Result<void> dead_letter(std::string_view s, const std::string& ack_id,
                           std::string_view reason) override {
    return inner_.dead_letter(s, ack_id, reason);
  }
  Result<SubscriptionStats> stats(std::string_view s) override { return inner_.stats(s); }
  bool shares_subscriptions() const override { return inner_.shares_subscriptions(); }
  Result<uint32_t> buckets(std::string_view s) override { return inner_.buckets(s); }
  Result<void> serve_buckets(std::string_view s,
                             const std::map<uint32_t, uint64_t>& buckets) override {
    return inner_.serve_buckets(s, buckets);
  }

 protected:
  Broker& inner() const { return inner_; }

 private:
  Broker& inner_;
};

}  // namespace backbone
