// The Pub/Sub front in process, through gRPC's own C++ client: authentication, roles,
// environment isolation, the topology's resources, bad input, the resource round trips, and
// StreamingPull's flow control. The official Node client's suite (node_suite_test.cc) covers the
// delivery semantics end to end.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include "auth/tokens.h"
#include "backbone/topology.h"
#include "google/pubsub/v1/pubsub.grpc.pb.h"
#include "pubsub/front/pubsub_front.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

namespace v1 = google::pubsub::v1;
using grpc::StatusCode;

constexpr const char* kProject = "backbone-local";

std::string topic(const std::string& id) {
  return std::string("projects/") + kProject + "/topics/" + id;
}
std::string sub(const std::string& id) {
  return std::string("projects/") + kProject + "/subscriptions/" + id;
}

class Front : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions bo;
    bo.url = "embedded://" + dir_.file("broker");
    auto b = Broker::open(bo);
    ASSERT_TRUE(b.ok());
    broker_ = std::move(*b);
    for (const auto& env : envs_) {
      ASSERT_TRUE(provision_topology(*broker_, Topology::built_in(), env, envs_).ok());
    }
    auto t = auth::TokenFile::open(dir_.file("tokens.json"));
    ASSERT_TRUE(t.ok());
    tokens_ = std::make_unique<auth::TokenFile>(std::move(*t));
    sandbox_ = *tokens_->create("sandbox-admin", "sandbox", {"admin"});
    subscriber_ = *tokens_->create("sandbox-sub", "sandbox", {"subscribe", "read"});
    production_ = *tokens_->create("production-admin", "production", {"admin"});
    pubsub::FrontOptions fo;
    fo.project = kProject;
    fo.envs = envs_;
    fo.metrics = &metrics_;
    auto f =
        pubsub::PubsubFront::start(*broker_, Topology::built_in(), *tokens_, fo, "127.0.0.1:0");
    ASSERT_TRUE(f.ok()) << f.error().describe();
    front_ = std::move(*f);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(front_->port()),
                                       grpc::InsecureChannelCredentials());
    pub_ = v1::Publisher::NewStub(channel);
    subs_ = v1::Subscriber::NewStub(channel);
  }
  void TearDown() override {
    if (front_) front_->shutdown(0);
  }

  // A call context with "authorization: Bearer <token>" (none for an empty token).
  std::unique_ptr<grpc::ClientContext> as(const std::string& token) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    return ctx;
  }
  grpc::Status create_topic(const std::string& token, const std::string& id) {
    v1::Topic t, out;
    t.set_name(topic(id));
    return pub_->CreateTopic(as(token).get(), t, &out);
  }
  grpc::Status get_topic(const std::string& token, const std::string& path) {
    v1::GetTopicRequest req;
    req.set_topic(path);
    v1::Topic out;
    return pub_->GetTopic(as(token).get(), req, &out);
  }
  grpc::Status publish(const std::string& token, const std::string& id, int n,
                       v1::PublishResponse* out = nullptr) {
    v1::PublishRequest req;
    req.set_topic(topic(id));
    for (int i = 0; i < n; ++i) req.add_messages()->set_data("m" + std::to_string(i));
    v1::PublishResponse ignored;
    return pub_->Publish(as(token).get(), req, out ? out : &ignored);
  }
  grpc::Status pull(const std::string& token, const std::string& id, int max,
                    v1::PullResponse* out) {
    v1::PullRequest req;
    req.set_subscription(sub(id));
    req.set_max_messages(max);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    req.set_return_immediately(true);  // deprecated, but clients send it
#pragma GCC diagnostic pop
    return subs_->Pull(as(token).get(), req, out);
  }
  v1::Subscription subscription(const std::string& id, const std::string& topic_id) {
    v1::Subscription s;
    s.set_name(sub(id));
    s.set_topic(topic(topic_id));
    return s;
  }
  size_t broker_subscriptions() { return broker_->list_subscriptions()->size(); }

  TempDir dir_;
  std::vector<std::string> envs_ = {"sandbox", "production"};
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<auth::TokenFile> tokens_;
  std::string sandbox_, subscriber_, production_;
  Metrics metrics_;
  std::unique_ptr<pubsub::PubsubFront> front_;
  std::unique_ptr<v1::Publisher::Stub> pub_;
  std::unique_ptr<v1::Subscriber::Stub> subs_;
};

TEST_F(Front, AMissingOrUnknownTokenIsUnauthenticated) {
  EXPECT_EQ(create_topic("", "orders").error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(create_topic("bb_not-a-token", "orders").error_code(), StatusCode::UNAUTHENTICATED);
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("authorization", "Basic " + sandbox_);
  v1::Topic t, out;
  t.set_name(topic("orders"));
  EXPECT_EQ(pub_->CreateTopic(ctx.get(), t, &out).error_code(), StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(broker_->get_topic("orders").ok());
}

TEST_F(Front, EveryCallIsCountedByMethodAndCode) {
  EXPECT_EQ(create_topic("", "orders").error_code(), StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(create_topic(sandbox_, "orders").ok());
  ASSERT_TRUE(publish(sandbox_, "orders", 2).ok());
  ASSERT_TRUE(publish(sandbox_, "orders", 1).ok());
  front_->shutdown(0);  // every call has sent its status
  const std::string text = metrics_.render();
  for (const char* line :
       {"backbone_pubsub_requests_total{code=\"UNAUTHENTICATED\",method=\"CreateTopic\"} 1",
        "backbone_pubsub_requests_total{code=\"OK\",method=\"CreateTopic\"} 1",
        "backbone_pubsub_requests_total{code=\"OK\",method=\"Publish\"} 2",
        "backbone_pubsub_request_seconds_count{method=\"Publish\"} 2"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST_F(Front, ATokenWithoutTheRoleIsDenied) {
  EXPECT_EQ(create_topic(subscriber_, "orders").error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_FALSE(broker_->get_topic("orders").ok());
  ASSERT_TRUE(create_topic(sandbox_, "orders").ok());
  EXPECT_EQ(publish(subscriber_, "orders", 1).error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(get_topic(subscriber_, topic("orders")).ok());
}

TEST_F(Front, AnotherEnvironmentsResourcesArePermissionDenied) {
  const std::string raw_production =
      Topology::built_in().topic_name(TopicFamily::kRaw, "production");
  EXPECT_EQ(get_topic(sandbox_, topic(raw_production)).error_code(), StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(create_topic(production_, "prod-orders").ok());
  EXPECT_EQ(broker_->get_topic("prod-orders")->labels.at("env"), "production");
  EXPECT_EQ(get_topic(sandbox_, topic("prod-orders")).error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(publish(sandbox_, "prod-orders", 1).error_code(), StatusCode::PERMISSION_DENIED);
  v1::DeleteTopicRequest del;
  del.set_topic(topic("prod-orders"));
  google::protobuf::Empty empty;
  EXPECT_EQ(pub_->DeleteTopic(as(sandbox_).get(), del, &empty).error_code(),
            StatusCode::PERMISSION_DENIED);
  // A sandbox subscription on production's topic is refused, and nothing is created.
  v1::Subscription out;
  const size_t before = broker_subscriptions();
  EXPECT_EQ(
      subs_->CreateSubscription(as(sandbox_).get(), subscription("steal", "prod-orders"), &out)
          .error_code(),
      StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(broker_subscriptions(), before);
  // A label naming another environment is refused.
  v1::Topic t;
  t.set_name(topic("sneaky"));
  (*t.mutable_labels())["env"] = "production";
  v1::Topic made;
  EXPECT_EQ(pub_->CreateTopic(as(sandbox_).get(), t, &made).error_code(),
            StatusCode::PERMISSION_DENIED);
  // Lists hold only the caller's own.
  v1::ListTopicsRequest list;
  list.set_project(std::string("projects/") + kProject);
  v1::ListTopicsResponse topics;
  ASSERT_TRUE(pub_->ListTopics(as(sandbox_).get(), list, &topics).ok());
  ASSERT_EQ(topics.topics_size(), 4);  // the sandbox topology's
  for (const auto& tp : topics.topics()) EXPECT_EQ(tp.labels().at("env"), "sandbox") << tp.name();
  v1::ListSubscriptionsRequest slist;
  slist.set_project(std::string("projects/") + kProject);
  v1::ListSubscriptionsResponse ss;
  ASSERT_TRUE(subs_->ListSubscriptions(as(production_).get(), slist, &ss).ok());
  EXPECT_EQ(ss.subscriptions_size(), 5);
  for (const auto& s : ss.subscriptions()) EXPECT_EQ(s.labels().at("env"), "production");
}

TEST_F(Front, TheTopologysResourcesStayBackbones) {
  const Topology& t = Topology::built_in();
  const std::string raw = t.topic_name(TopicFamily::kRaw, "sandbox");
  EXPECT_EQ(publish(sandbox_, raw, 1).error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(create_topic(sandbox_, raw).error_code(), StatusCode::FAILED_PRECONDITION);
  v1::DeleteTopicRequest del;
  del.set_topic(topic(raw));
  google::protobuf::Empty empty;
  EXPECT_EQ(pub_->DeleteTopic(as(sandbox_).get(), del, &empty).error_code(),
            StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(broker_->get_topic(raw).ok());
  v1::PullResponse got;
  EXPECT_EQ(pull(sandbox_, t.subscription_for("merge", "sandbox")->name, 10, &got).error_code(),
            StatusCode::FAILED_PRECONDITION);
  // External consumers pull the sync subscription.
  EXPECT_TRUE(pull(subscriber_, t.subscription_for("sync", "sandbox")->name, 10, &got).ok());
}

// Another backbone process whose broker is this front runs the stages of its environment: with
// the pipeline role it publishes to the managed topics and pulls the stages' subscriptions; in
// its own environment only, and admin alone does not grant it.
TEST_F(Front, ThePipelineRoleRunsTheStagesThroughTheFront) {
  const Topology& t = Topology::built_in();
  const std::string raw = t.topic_name(TopicFamily::kRaw, "sandbox");
  const std::string merge = t.subscription_for("merge", "sandbox")->name;
  const std::string pipeline = *tokens_->create("sandbox-pipeline", "sandbox", {"pipeline"});
  const std::string both = *tokens_->create("sandbox-both", "sandbox", {"admin", "pipeline"});
  ASSERT_TRUE(publish(pipeline, raw, 2).ok());
  v1::PullResponse got;
  ASSERT_TRUE(pull(both, merge, 10, &got).ok());
  EXPECT_EQ(got.received_messages_size(), 2);
  // Without the role, the same calls are refused, and with it another environment's are too.
  EXPECT_EQ(pull(sandbox_, merge, 10, &got).error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(publish(pipeline, t.topic_name(TopicFamily::kRaw, "production"), 1).error_code(),
            StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(pull(pipeline, t.subscription_for("merge", "production")->name, 10, &got).error_code(),
            StatusCode::PERMISSION_DENIED);
}

TEST_F(Front, BadInputGetsInvalidArgumentAndChangesNothing) {
  EXPECT_EQ(get_topic(sandbox_, "topics/orders").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(get_topic(sandbox_, "projects/backbone-local/topics/").error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(get_topic(sandbox_, topic("x")).error_code(), StatusCode::INVALID_ARGUMENT);  // short
  EXPECT_EQ(get_topic(sandbox_, "projects/elsewhere/topics/orders").error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(get_topic(sandbox_, topic("no-such-topic")).error_code(), StatusCode::NOT_FOUND);
  ASSERT_TRUE(create_topic(sandbox_, "orders").ok());
  EXPECT_EQ(create_topic(sandbox_, "orders").error_code(), StatusCode::ALREADY_EXISTS);
  // Publish: no messages, an empty message, a message over 10 MiB.
  EXPECT_EQ(publish(sandbox_, "orders", 0).error_code(), StatusCode::INVALID_ARGUMENT);
  v1::PublishRequest req;
  req.set_topic(topic("orders"));
  req.add_messages()->set_data("fine");
  req.add_messages();
  v1::PublishResponse resp;
  EXPECT_EQ(pub_->Publish(as(sandbox_).get(), req, &resp).error_code(),
            StatusCode::INVALID_ARGUMENT);
  req.mutable_messages(1)->set_data(std::string(kMaxMessageBytes + 1, 'x'));
  EXPECT_EQ(pub_->Publish(as(sandbox_).get(), req, &resp).error_code(),
            StatusCode::INVALID_ARGUMENT);
  // Subscriptions: a short ack deadline, a filter, push delivery, a bad dead-letter topic.
  const size_t before = broker_subscriptions();
  v1::Subscription out;
  auto s = subscription("orders-sub", "orders");
  s.set_ack_deadline_seconds(5);
  EXPECT_EQ(subs_->CreateSubscription(as(sandbox_).get(), s, &out).error_code(),
            StatusCode::INVALID_ARGUMENT);
  s = subscription("orders-sub", "orders");
  s.set_filter("attributes.kind = \"x\"");
  EXPECT_EQ(subs_->CreateSubscription(as(sandbox_).get(), s, &out).error_code(),
            StatusCode::INVALID_ARGUMENT);
  s = subscription("orders-sub", "orders");
  s.mutable_push_config()->set_push_endpoint("https://example.com/push");
  EXPECT_EQ(subs_->CreateSubscription(as(sandbox_).get(), s, &out).error_code(),
            StatusCode::INVALID_ARGUMENT);
  s = subscription("orders-sub", "orders");
  s.mutable_dead_letter_policy()->set_dead_letter_topic("dlq");
  EXPECT_EQ(subs_->CreateSubscription(as(sandbox_).get(), s, &out).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(broker_subscriptions(), before);
  // Pull and deadlines.
  ASSERT_TRUE(
      subs_->CreateSubscription(as(sandbox_).get(), subscription("orders-sub", "orders"), &out)
          .ok());
  v1::PullResponse got;
  EXPECT_EQ(pull(sandbox_, "orders-sub", 0, &got).error_code(), StatusCode::INVALID_ARGUMENT);
  v1::ModifyAckDeadlineRequest mod;
  mod.set_subscription(sub("orders-sub"));
  mod.add_ack_ids("whatever");
  mod.set_ack_deadline_seconds(601);
  google::protobuf::Empty empty;
  EXPECT_EQ(subs_->ModifyAckDeadline(as(sandbox_).get(), mod, &empty).error_code(),
            StatusCode::INVALID_ARGUMENT);
  v1::AcknowledgeRequest ack;
  ack.set_subscription(sub("orders-sub"));
  EXPECT_EQ(subs_->Acknowledge(as(sandbox_).get(), ack, &empty).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(broker_->stats("orders-sub")->undelivered, 0u);
}

TEST_F(Front, SubscriptionsKeepTheirPoliciesAndMessagesFlow) {
  ASSERT_TRUE(create_topic(sandbox_, "orders").ok());
  ASSERT_TRUE(create_topic(sandbox_, "orders-dlq").ok());
  auto s = subscription("orders-sub", "orders");
  s.set_ack_deadline_seconds(20);
  s.set_enable_message_ordering(true);
  s.mutable_retry_policy()->mutable_minimum_backoff()->set_seconds(2);
  s.mutable_retry_policy()->mutable_maximum_backoff()->set_seconds(90);
  s.mutable_dead_letter_policy()->set_dead_letter_topic(topic("orders-dlq"));
  s.mutable_dead_letter_policy()->set_max_delivery_attempts(6);
  s.mutable_message_retention_duration()->set_seconds(3600);
  (*s.mutable_labels())["team"] = "sync";
  v1::Subscription made;
  ASSERT_TRUE(subs_->CreateSubscription(as(sandbox_).get(), s, &made).ok());
  v1::GetSubscriptionRequest get;
  get.set_subscription(sub("orders-sub"));
  v1::Subscription got;
  ASSERT_TRUE(subs_->GetSubscription(as(sandbox_).get(), get, &got).ok());
  EXPECT_EQ(got.topic(), topic("orders"));
  EXPECT_EQ(got.ack_deadline_seconds(), 20);
  EXPECT_TRUE(got.enable_message_ordering());
  EXPECT_EQ(got.retry_policy().minimum_backoff().seconds(), 2);
  EXPECT_EQ(got.retry_policy().maximum_backoff().seconds(), 90);
  EXPECT_EQ(got.dead_letter_policy().dead_letter_topic(), topic("orders-dlq"));
  EXPECT_EQ(got.dead_letter_policy().max_delivery_attempts(), 6);
  EXPECT_EQ(got.message_retention_duration().seconds(), 3600);
  EXPECT_EQ(got.labels().at("team"), "sync");
  EXPECT_EQ(got.labels().at("env"), "sandbox");
  // An update changes what its mask names, and keeps the env label.
  v1::UpdateSubscriptionRequest up;
  up.mutable_subscription()->set_name(sub("orders-sub"));
  up.mutable_subscription()->set_ack_deadline_seconds(45);
  up.mutable_update_mask()->add_paths("ack_deadline_seconds");
  up.mutable_update_mask()->add_paths("labels");
  v1::Subscription updated;
  ASSERT_TRUE(subs_->UpdateSubscription(as(sandbox_).get(), up, &updated).ok());
  EXPECT_EQ(updated.ack_deadline_seconds(), 45);
  EXPECT_EQ(updated.dead_letter_policy().max_delivery_attempts(), 6);
  EXPECT_EQ(updated.labels().at("env"), "sandbox");
  EXPECT_EQ(updated.labels().count("team"), 0u);
  up.mutable_update_mask()->set_paths(0, "enable_message_ordering");
  EXPECT_EQ(subs_->UpdateSubscription(as(sandbox_).get(), up, &updated).error_code(),
            StatusCode::INVALID_ARGUMENT);
  // Publish, pull (delivery_attempt counts, as the subscription has a dead-letter policy), ack.
  v1::PublishResponse ids;
  ASSERT_TRUE(publish(sandbox_, "orders", 3, &ids).ok());
  ASSERT_EQ(ids.message_ids_size(), 3);
  v1::PullResponse pulled;
  ASSERT_TRUE(pull(sandbox_, "orders-sub", 10, &pulled).ok());
  ASSERT_EQ(pulled.received_messages_size(), 3);
  v1::AcknowledgeRequest ack;
  ack.set_subscription(sub("orders-sub"));
  for (int i = 0; i < 3; ++i) {
    const auto& m = pulled.received_messages(i);
    EXPECT_EQ(m.message().data(), "m" + std::to_string(i));
    EXPECT_EQ(m.message().message_id(), ids.message_ids(i));
    EXPECT_EQ(m.delivery_attempt(), 1);
    ack.add_ack_ids(m.ack_id());
  }
  google::protobuf::Empty empty;
  ASSERT_TRUE(subs_->Acknowledge(as(sandbox_).get(), ack, &empty).ok());
  EXPECT_EQ(broker_->stats("orders-sub")->idle(), std::optional<bool>(true));
  // A deleted topic leaves its subscription detached.
  v1::DeleteTopicRequest del;
  del.set_topic(topic("orders"));
  ASSERT_TRUE(pub_->DeleteTopic(as(sandbox_).get(), del, &empty).ok());
  ASSERT_TRUE(subs_->GetSubscription(as(sandbox_).get(), get, &got).ok());
  EXPECT_EQ(got.topic(), "_deleted-topic_");
}

TEST_F(Front, StreamingPullHoldsNoMoreThanItsFlowControlAllows) {
  ASSERT_TRUE(create_topic(sandbox_, "orders").ok());
  v1::Subscription made;
  ASSERT_TRUE(
      subs_->CreateSubscription(as(sandbox_).get(), subscription("orders-sub", "orders"), &made)
          .ok());
  ASSERT_TRUE(publish(sandbox_, "orders", 6).ok());
  auto ctx = as(sandbox_);
  // A server that never makes room fails the test here instead of hanging it.
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = subs_->StreamingPull(ctx.get());
  v1::StreamingPullRequest first;
  first.set_subscription(sub("orders-sub"));
  first.set_stream_ack_deadline_seconds(30);
  first.set_max_outstanding_messages(2);
  ASSERT_TRUE(stream->Write(first));
  std::vector<std::string> held;
  v1::StreamingPullResponse resp;
  while (held.size() < 2 && stream->Read(&resp)) {
    for (const auto& m : resp.received_messages()) held.push_back(m.ack_id());
  }
  ASSERT_EQ(held.size(), 2u);  // not 6: the server keeps to the limit
  EXPECT_EQ(resp.received_messages(0).delivery_attempt(), 0);  // no dead-letter policy
  // Acking one makes room for exactly one more.
  v1::StreamingPullRequest ack;
  ack.add_ack_ids(held[0]);
  ASSERT_TRUE(stream->Write(ack));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_EQ(resp.received_messages_size(), 1);
  held.push_back(resp.received_messages(0).ack_id());
  // An ack by a unary Acknowledge (as Google's clients send them) makes room as well.
  v1::AcknowledgeRequest unary;
  unary.set_subscription(sub("orders-sub"));
  unary.add_ack_ids(held[2]);
  google::protobuf::Empty empty;
  ASSERT_TRUE(subs_->Acknowledge(as(sandbox_).get(), unary, &empty).ok());
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_EQ(resp.received_messages_size(), 1);
  held.push_back(resp.received_messages(0).ack_id());
  // A deadline of 0 is a nack: it frees room, and the message comes back.
  v1::StreamingPullRequest nack;
  nack.add_modify_deadline_ack_ids(held[1]);
  nack.add_modify_deadline_seconds(0);
  ASSERT_TRUE(stream->Write(nack));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_EQ(resp.received_messages_size(), 1);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(Front, StreamingPullRefusesABadFirstRequest) {
  ASSERT_TRUE(create_topic(sandbox_, "orders").ok());
  v1::Subscription made;
  ASSERT_TRUE(
      subs_->CreateSubscription(as(sandbox_).get(), subscription("orders-sub", "orders"), &made)
          .ok());
  auto ctx = as(sandbox_);
  auto stream = subs_->StreamingPull(ctx.get());
  v1::StreamingPullRequest first;
  first.set_subscription(sub("orders-sub"));
  first.set_stream_ack_deadline_seconds(5);
  ASSERT_TRUE(stream->Write(first));
  stream->WritesDone();
  EXPECT_EQ(stream->Finish().error_code(), StatusCode::INVALID_ARGUMENT);
  auto ctx2 = as(production_);
  auto stream2 = subs_->StreamingPull(ctx2.get());
  first.set_stream_ack_deadline_seconds(30);
  ASSERT_TRUE(stream2->Write(first));
  stream2->WritesDone();
  EXPECT_EQ(stream2->Finish().error_code(), StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace backbone::testing
