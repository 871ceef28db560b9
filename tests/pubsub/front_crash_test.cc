// The Pub/Sub front under SIGKILL: what it acknowledged survives. A client publishes through
// `backbone serve`'s front and acks some deliveries; the server is killed in the middle of the
// publishing and started again; then every message whose Publish was answered is delivered,
// except those whose Acknowledge was answered, which never come back.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "auth/tokens.h"
#include "google/pubsub/v1/pubsub.grpc.pb.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

namespace v1 = google::pubsub::v1;
using namespace std::chrono_literals;

constexpr const char* kTopic = "projects/backbone-local/topics/crash-orders";
constexpr const char* kSub = "projects/backbone-local/subscriptions/crash-orders.work";

class Client {
 public:
  Client(int port, std::string token) : token_(std::move(token)) {
    auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    pub_ = v1::Publisher::NewStub(ch);
    sub_ = v1::Subscriber::NewStub(ch);
  }
  std::unique_ptr<grpc::ClientContext> ctx() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", "Bearer " + token_);
    c->set_deadline(std::chrono::system_clock::now() + 5s);
    return c;
  }
  std::unique_ptr<v1::Publisher::Stub> pub_;
  std::unique_ptr<v1::Subscriber::Stub> sub_;

 private:
  std::string token_;
};

// Pulls until the subscription is drained; returns the data seen (acking each).
std::set<std::string> drain(Client& c) {
  std::set<std::string> seen;
  for (int empty = 0; empty < 3;) {
    v1::PullRequest req;
    req.set_subscription(kSub);
    req.set_max_messages(1000);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    req.set_return_immediately(true);  // deprecated, but clients send it
#pragma GCC diagnostic pop
    v1::PullResponse resp;
    if (!c.sub_->Pull(c.ctx().get(), req, &resp).ok() || resp.received_messages().empty()) {
      ++empty;
      continue;
    }
    v1::AcknowledgeRequest ack;
    ack.set_subscription(kSub);
    for (const auto& m : resp.received_messages()) {
      seen.insert(m.message().data());
      ack.add_ack_ids(m.ack_id());
    }
    google::protobuf::Empty e;
    EXPECT_TRUE(c.sub_->Acknowledge(c.ctx().get(), ack, &e).ok());
  }
  return seen;
}

TEST(PubsubFrontCrash, WhatTheFrontAcknowledgedSurvivesSigkill) {
  TempDir dir;
  const int http_port = free_loopback_port();
  const int port = free_loopback_port();
  const std::string config = write_serve_config(dir.file(""), "127.0.0.1:" + std::to_string(port));
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  ASSERT_TRUE(tokens.ok());
  const std::string token = *tokens->create("crash", "sandbox", {"admin"});
  ServeProcess serve(config, http_port);
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  ASSERT_TRUE(wait_for_port(port, 10'000));
  Client c(port, token);
  {
    v1::Topic t, out;
    t.set_name(kTopic);
    ASSERT_TRUE(c.pub_->CreateTopic(c.ctx().get(), t, &out).ok());
    v1::Subscription s, made;
    s.set_name(kSub);
    s.set_topic(kTopic);
    s.set_ack_deadline_seconds(600);
    ASSERT_TRUE(c.sub_->CreateSubscription(c.ctx().get(), s, &made).ok());
  }
  // Some messages published and acked first: those must never come back.
  std::set<std::string> acked;
  {
    v1::PublishRequest req;
    req.set_topic(kTopic);
    for (int i = 0; i < 50; ++i) req.add_messages()->set_data("early-" + std::to_string(i));
    v1::PublishResponse resp;
    ASSERT_TRUE(c.pub_->Publish(c.ctx().get(), req, &resp).ok());
    acked = drain(c);
    ASSERT_EQ(acked.size(), 50u);
  }
  // Publishing in batches of 10 while the server is killed.
  std::mutex mu;
  std::set<std::string> published;  // answered OK
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    Client pc(port, token);
    for (int batch = 0; !stop; ++batch) {
      v1::PublishRequest req;
      req.set_topic(kTopic);
      for (int i = 0; i < 10; ++i) {
        req.add_messages()->set_data("m-" + std::to_string(batch) + "-" + std::to_string(i));
      }
      v1::PublishResponse resp;
      if (pc.pub_->Publish(pc.ctx().get(), req, &resp).ok()) {
        std::lock_guard lock(mu);
        for (const auto& m : req.messages()) published.insert(m.data());
      }
    }
  });
  std::this_thread::sleep_for(400ms);  // a bounded stretch of publishing before the crash
  EXPECT_EQ(serve.kill(SIGKILL) & 0x7f, SIGKILL);
  std::this_thread::sleep_for(100ms);
  stop = true;
  publisher.join();
  ASSERT_GT(published.size(), 0u);
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  ASSERT_TRUE(wait_for_port(port, 10'000));
  Client after(port, token);
  const std::set<std::string> seen = drain(after);
  size_t lost = 0;
  for (const auto& d : published) lost += seen.count(d) == 0;
  size_t back = 0;
  for (const auto& d : acked) back += seen.count(d);
  std::printf(
      "front crash test: %zu publishes answered before SIGKILL, %zu delivered after, %zu "
      "lost, %zu acked ones back\n",
      published.size(), seen.size(), lost, back);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(back, 0u);
  EXPECT_EQ(serve.kill(SIGTERM) & 0x7f, 0);
}

}  // namespace
}  // namespace backbone::testing
