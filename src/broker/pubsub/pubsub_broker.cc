#include "broker/pubsub/pubsub_broker.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "google/pubsub/v1/pubsub.grpc.pb.h"
#include "pubsub/pubsub_convert.h"
#include "pubsub/pubsub_names.h"

namespace backbone::pubsub {
namespace {

constexpr int64_t kCallTimeoutUs = 30 * kSecond;
constexpr size_t kMaxPublishMessages = 1000;  // per Publish call, as Pub/Sub allows
constexpr size_t kMaxPublishBytes = 9 << 20;  // under Pub/Sub's 10 MB per request
constexpr int kMaxAckIds = 2500;              // per Acknowledge or ModifyAckDeadline call
constexpr int64_t kForgetDeliveriesUs = 3600 * kSecond;  // a delivery is kept this long at most

int32_t whole_seconds(int64_t us) { return static_cast<int32_t>((us + kSecond - 1) / kSecond); }

class PubsubBroker final : public Broker {
 public:
  PubsubBroker(PubsubUrl url, const Clock* clock, const std::shared_ptr<grpc::Channel>& channel)
      : url_(std::move(url)),
        clock_(clock ? *clock : SystemClock::instance()),
        pub_(v1::Publisher::NewStub(channel)),
        sub_(v1::Subscriber::NewStub(channel)) {}

  Result<void> create_topic(const TopicConfig& config) override {
    BACKBONE_TRY(validate_topic_config(config));
    v1::Topic req, resp;
    topic_to_proto(config, url_.project, &req);
    req.clear_state();
    return check(pub_->CreateTopic(call().get(), req, &resp), "CreateTopic");
  }

  Result<TopicConfig> get_topic(std::string_view name) override {
    v1::GetTopicRequest req;
    req.set_topic(topic_path(url_.project, name));
    v1::Topic resp;
    BACKBONE_TRY(check(pub_->GetTopic(call().get(), req, &resp), "GetTopic"));
    return topic_of(resp, url_.project);
  }

  Result<std::vector<TopicConfig>> list_topics() override {
    std::vector<TopicConfig> out;
    std::string token;
    do {
      v1::ListTopicsRequest req;
      req.set_project(project_path(url_.project));
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::ListTopicsResponse resp;
      BACKBONE_TRY(check(pub_->ListTopics(call().get(), req, &resp), "ListTopics"));
      for (const auto& t : resp.topics()) {
        auto c = topic_of(t, url_.project);
        if (c.ok()) out.push_back(std::move(*c));
      }
      token = resp.next_page_token();
    } while (!token.empty());
    return out;
  }

  Result<void> delete_topic(std::string_view name) override {
    v1::DeleteTopicRequest req;
    req.set_topic(topic_path(url_.project, name));
    google::protobuf::Empty resp;
    return check(pub_->DeleteTopic(call().get(), req, &resp), "DeleteTopic");
  }

  Result<void> create_subscription(const SubscriptionConfig& config) override {
    BACKBONE_TRY(validate_subscription_config(config));
    v1::Subscription req, resp;
    subscription_to_proto(config, url_.project, true, &req);
    req.clear_state();
    return check(sub_->CreateSubscription(call().get(), req, &resp), "CreateSubscription");
  }

  Result<SubscriptionConfig> get_subscription(std::string_view name) override {
    v1::GetSubscriptionRequest req;
    req.set_subscription(subscription_path(url_.project, name));
    v1::Subscription resp;
    BACKBONE_TRY(check(sub_->GetSubscription(call().get(), req, &resp), "GetSubscription"));
    return subscription_of(resp, url_.project);
  }

  Result<std::vector<SubscriptionConfig>> list_subscriptions() override {
    std::vector<SubscriptionConfig> out;
    std::string token;
    do {
      v1::ListSubscriptionsRequest req;
      req.set_project(project_path(url_.project));
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::ListSubscriptionsResponse resp;
      BACKBONE_TRY(check(sub_->ListSubscriptions(call().get(), req, &resp), "ListSubscriptions"));
      for (const auto& s : resp.subscriptions()) {
        auto c = subscription_of(s, url_.project);
        if (c.ok()) out.push_back(std::move(*c));
      }
      token = resp.next_page_token();
    } while (!token.empty());
    return out;
  }

  Result<void> update_subscription(const SubscriptionConfig& config) override {
    auto current = get_subscription(config.name);
    if (!current.ok()) return current.error();
    BACKBONE_TRY(validate_subscription_update(*current, config));
    v1::UpdateSubscriptionRequest req;
    subscription_to_proto(config, url_.project, true, req.mutable_subscription());
    req.mutable_subscription()->clear_state();
    // Only what changes: a field left out stays as it is (and some servers refuse some paths;
    // Google's emulator refuses "labels").
    auto* mask = req.mutable_update_mask();
    if (current->ack_deadline_us != config.ack_deadline_us) mask->add_paths("ack_deadline_seconds");
    if (current->retry != config.retry) mask->add_paths("retry_policy");
    if (current->dead_letter != config.dead_letter) mask->add_paths("dead_letter_policy");
    if (current->retention_us != config.retention_us) mask->add_paths("message_retention_duration");
    if (current->labels != config.labels) mask->add_paths("labels");
    if (mask->paths_size() == 0) return {};
    v1::Subscription resp;
    BACKBONE_TRY(check(sub_->UpdateSubscription(call().get(), req, &resp), "UpdateSubscription"));
    forget_config(config.name);
    return {};
  }

  Result<void> delete_subscription(std::string_view name) override {
    v1::DeleteSubscriptionRequest req;
    req.set_subscription(subscription_path(url_.project, name));
    google::protobuf::Empty resp;
    BACKBONE_TRY(check(sub_->DeleteSubscription(call().get(), req, &resp), "DeleteSubscription"));
    forget_config(name);
    return {};
  }

  Result<std::vector<std::string>> publish(std::string_view topic,
                                           std::span<const OutgoingMessage> messages) override {
    BACKBONE_TRY(validate_messages(messages));
    std::vector<std::string> ids;
    ids.reserve(messages.size());
    size_t i = 0;
    while (i < messages.size()) {
      v1::PublishRequest req;
      req.set_topic(topic_path(url_.project, topic));
      size_t bytes = 0;
      for (; i < messages.size() && static_cast<size_t>(req.messages_size()) < kMaxPublishMessages;
           ++i) {
        const size_t n =
            wire_bytes(messages[i].data, messages[i].attributes, messages[i].ordering_key);
        if (req.messages_size() > 0 && bytes + n > kMaxPublishBytes) break;
        message_to_proto(messages[i], req.add_messages());
        bytes += n;
      }
      v1::PublishResponse resp;
      BACKBONE_TRY(check(pub_->Publish(call().get(), req, &resp), "Publish"));
      for (auto& id : *resp.mutable_message_ids()) ids.push_back(std::move(id));
    }
    return ids;
  }

  Result<std::vector<ReceivedMessage>> pull(std::string_view subscription, size_t max,
                                            int64_t wait_us) override {
    std::vector<ReceivedMessage> out;
    if (max == 0) return out;
    auto config = config_of(subscription);
    if (!config.ok()) return config.error();
    v1::PullRequest req;
    req.set_subscription(subscription_path(url_.project, subscription));
    req.set_max_messages(static_cast<int32_t>(std::min<size_t>(max, 1000)));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    req.set_return_immediately(wait_us <= 0);  // deprecated, and still what says "do not wait"
#pragma GCC diagnostic pop
    v1::PullResponse resp;
    const grpc::Status s =
        sub_->Pull(call(wait_us > 0 ? wait_us : kCallTimeoutUs).get(), req, &resp);
    if (!s.ok()) {
      if (wait_us > 0 && s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) return out;
      return from_status(s, "Pull");
    }
    for (const auto& rm : resp.received_messages()) {
      ReceivedMessage m;
      m.ack_id = rm.ack_id();
      m.message = message_of(rm.message());
      m.delivery_attempt = std::max(1, rm.delivery_attempt());
      out.push_back(std::move(m));
    }
    if (config->dead_letter) remember(out);
    return out;
  }

  Result<size_t> ack(std::string_view subscription, std::span<const std::string> ack_ids) override {
    BACKBONE_TRY(acknowledge(subscription, ack_ids));
    forget(ack_ids);
    return ack_ids.size();
  }

  Result<void> nack(std::string_view subscription, std::span<const std::string> ack_ids,
                    std::optional<int64_t> delay_us, std::string_view reason) override {
    if (delay_us) BACKBONE_TRY(validate_delay(*delay_us, "delay"));
    auto config = config_of(subscription);
    if (!config.ok()) return config.error();
    std::vector<std::string> retry;
    for (const std::string& id : ack_ids) {
      auto last = config->dead_letter
                      ? take_last_attempt(id, config->dead_letter->max_delivery_attempts)
                      : std::nullopt;
      if (last) {
        BACKBONE_TRY(send_to_dead_letter(*config, *last, reason));
      } else {
        retry.push_back(id);
      }
    }
    forget(retry);
    return modify(subscription, retry, delay_us.value_or(0));
  }

  Result<void> modify_ack_deadline(std::string_view subscription,
                                   std::span<const std::string> ack_ids,
                                   int64_t deadline_us) override {
    BACKBONE_TRY(validate_delay(deadline_us, "ack_deadline"));
    if (deadline_us == 0) forget(ack_ids);
    return modify(subscription, ack_ids, deadline_us);
  }

  Result<void> dead_letter(std::string_view subscription, const std::string& ack_id,
                           std::string_view reason) override {
    auto config = config_of(subscription);
    if (!config.ok()) return config.error();
    if (!config->dead_letter) {
      return make_error(Errc::kInvalidArgument, "subscription \"" + std::string(subscription) +
                                                    "\" has no dead-letter policy");
    }
    auto delivery = take_last_attempt(ack_id, 0);
    if (!delivery) {
      return make_error(Errc::kNotFound, "no delivery of this client has that ack id", "ack_id");
    }
    return send_to_dead_letter(*config, *delivery, reason);
  }

  Result<SubscriptionStats> stats(std::string_view) override {
    return make_error(Errc::kInvalidArgument,
                      "Pub/Sub's API has no backlog figures (Cloud Monitoring has them)");
  }

 private:
  std::unique_ptr<grpc::ClientContext> call(int64_t timeout_us = kCallTimeoutUs) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(timeout_us));
    if (!url_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + url_.token);
    return ctx;
  }

  static Result<void> check(const grpc::Status& s, const char* what) {
    if (s.ok()) return {};
    return from_status(s, what);
  }

  Result<void> acknowledge(std::string_view subscription, std::span<const std::string> ids) {
    for (size_t i = 0; i < ids.size(); i += kMaxAckIds) {
      v1::AcknowledgeRequest req;
      req.set_subscription(subscription_path(url_.project, subscription));
      for (size_t j = i; j < std::min(ids.size(), i + kMaxAckIds); ++j) req.add_ack_ids(ids[j]);
      google::protobuf::Empty resp;
      BACKBONE_TRY(check(sub_->Acknowledge(call().get(), req, &resp), "Acknowledge"));
    }
    return {};
  }

  Result<void> modify(std::string_view subscription, std::span<const std::string> ids,
                      int64_t deadline_us) {
    for (size_t i = 0; i < ids.size(); i += kMaxAckIds) {
      v1::ModifyAckDeadlineRequest req;
      req.set_subscription(subscription_path(url_.project, subscription));
      req.set_ack_deadline_seconds(whole_seconds(deadline_us));
      for (size_t j = i; j < std::min(ids.size(), i + kMaxAckIds); ++j) req.add_ack_ids(ids[j]);
      google::protobuf::Empty resp;
      BACKBONE_TRY(check(sub_->ModifyAckDeadline(call().get(), req, &resp), "ModifyAckDeadline"));
    }
    return {};
  }

  // Publishes the delivery to the dead-letter topic with the backbone.* attributes, then acks it.
  Result<void> send_to_dead_letter(const SubscriptionConfig& config, const ReceivedMessage& d,
                                   std::string_view reason) {
    OutgoingMessage m;
    m.data = d.message.data;
    m.attributes = d.message.attributes;
    m.ordering_key = d.message.ordering_key;
    m.attributes[std::string(kAttrDeliveryAttempt)] = std::to_string(d.delivery_attempt);
    m.attributes[std::string(kAttrLastError)] =
        std::string(reason.substr(0, kMaxAttributeValueBytes));
    m.attributes[std::string(kAttrSourceSubscription)] = config.name;
    m.attributes[std::string(kAttrSourceMessageId)] = d.message.id;
    m.attributes[std::string(kAttrDeadLetteredAt)] = clock_.now().to_rfc3339();
    BACKBONE_TRY(publish(config.dead_letter->topic, std::span(&m, 1)));
    return acknowledge(config.name, std::span(&d.ack_id, 1));
  }

  // The subscription's policies, fetched once.
  Result<SubscriptionConfig> config_of(std::string_view subscription) {
    {
      std::lock_guard lock(mu_);
      if (auto it = configs_.find(subscription); it != configs_.end()) return it->second;
    }
    auto c = get_subscription(subscription);
    if (!c.ok()) return c.error();
    std::lock_guard lock(mu_);
    configs_[std::string(subscription)] = *c;
    return c;
  }
  void forget_config(std::string_view subscription) {
    std::lock_guard lock(mu_);
    if (auto it = configs_.find(subscription); it != configs_.end()) configs_.erase(it);
  }

  // Deliveries of subscriptions with a dead-letter policy are kept until acked, nacked or an
  // hour old, so that this client can dead-letter them itself.
  void remember(const std::vector<ReceivedMessage>& got) {
    std::lock_guard lock(mu_);
    const int64_t now = clock_.now().micros();
    while (!order_.empty() && order_.front().first + kForgetDeliveriesUs < now) {
      deliveries_.erase(order_.front().second);
      order_.pop_front();
    }
    for (const auto& m : got) {
      deliveries_[m.ack_id] = m;
      order_.emplace_back(now, m.ack_id);
    }
  }
  void forget(std::span<const std::string> ids) {
    std::lock_guard lock(mu_);
    for (const auto& id : ids) deliveries_.erase(id);
  }
  // The delivery `ack_id` if its attempt has reached `max_attempts`, taken out.
  std::optional<ReceivedMessage> take_last_attempt(const std::string& ack_id, int max_attempts) {
    std::lock_guard lock(mu_);
    auto it = deliveries_.find(ack_id);
    if (it == deliveries_.end() || it->second.delivery_attempt < max_attempts) {
      return std::nullopt;
    }
    ReceivedMessage d = std::move(it->second);
    deliveries_.erase(it);
    return d;
  }

  const PubsubUrl url_;
  const Clock& clock_;
  std::unique_ptr<v1::Publisher::Stub> pub_;
  std::unique_ptr<v1::Subscriber::Stub> sub_;
  std::mutex mu_;
  std::map<std::string, SubscriptionConfig, std::less<>> configs_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, ReceivedMessage> deliveries_;     // GUARDED_BY(mu_)
  std::deque<std::pair<int64_t, std::string>> order_;               // GUARDED_BY(mu_)
};

}  // namespace

Result<std::unique_ptr<Broker>> open_pubsub_broker(const PubsubUrl& url, const Clock* clock) {
  std::shared_ptr<grpc::ChannelCredentials> creds =
      url.plaintext ? grpc::InsecureChannelCredentials() : grpc::GoogleDefaultCredentials();
  if (!creds) {
    return make_error(Errc::kUnavailable,
                      "no Google Application Default Credentials for " + url.endpoint);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(url.endpoint, creds, args);
  return std::unique_ptr<Broker>(new PubsubBroker(url, clock, channel));
}

}  // namespace backbone::pubsub
