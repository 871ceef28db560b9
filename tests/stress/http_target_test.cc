// `stress --url`'s client (HttpTarget) against a loopback server that gives the answers a
// broken or foreign server could give: fields missing, of the wrong type, truncated bodies, a
// topology answer without a backlog. Each must come back as an error that says what was wrong,
// or, where the answer is legal, be read right; nothing may throw.
#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <mutex>
#include <thread>

#include "stress/http_target.h"

namespace backbone::testing {
namespace {

// A server whose answers the test sets, per method and path.
class CannedServer {
 public:
  CannedServer() {
    auto answer = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lk(mu_);
      auto it = answers_.find(req.method + " " + req.path);
      if (it == answers_.end()) {
        res.status = 404;
        return;
      }
      res.status = it->second.first;
      res.set_content(it->second.second, "application/json");
    };
    server_.Get(".*", answer);
    server_.Post(".*", answer);
    port_ = server_.bind_to_any_port("127.0.0.1");
    // Bound already: connections wait in the backlog until the loop accepts them.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    set("GET /readyz", 200, "{}");
  }
  ~CannedServer() {
    server_.stop();
    thread_.join();
  }
  void set(const std::string& route, int status, std::string body) {
    std::lock_guard lk(mu_);
    answers_[route] = {status, std::move(body)};
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::pair<int, std::string>> answers_;  // GUARDED_BY(mu_)
};

class HttpTargetAnswers : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = stress::HttpTarget::connect(server_.url(), "token", "sandbox");
    ASSERT_TRUE(t.ok()) << t.error().describe();
    target_ = std::move(*t);
  }
  void topology(const std::string& merge_sub, const std::string& retry_sub = R"({})") {
    auto named = [](const std::string& name, const std::string& rest) {
      std::string body = rest;
      body.insert(1, R"("name":")" + name + "\"" + (rest == "{}" ? "" : ","));
      return body;
    };
    server_.set("GET /v1/envs/sandbox/topology", 200,
                R"({"subscriptions":[)" + named("events.raw.sandbox.merge", merge_sub) + "," +
                    named("events.error.sandbox.retry", retry_sub) + "]}");
  }
  Result<bool> idle() { return target_->stages_idle(); }
  // The first error message of next_merged, or "" when it read the page.
  std::string merged_error(const std::string& pull_answer) {
    server_.set("POST /v1/envs/sandbox/subscriptions/sync:pull", 200, pull_answer);
    server_.set("POST /v1/envs/sandbox/subscriptions/sync:acknowledge", 200, "{}");
    stress::VerifyInput in;
    target_->use_for(in);
    auto got = in.next_merged();
    return got.ok() ? "" : got.error().describe();
  }
  std::string ingest_error(const std::string& answer) {
    server_.set("POST /v1/envs/sandbox/events", 201, answer);
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "c1";
    d.source = "s";
    d.changes = R"({"name":"Ada"})";
    auto got = target_->ingest(std::span(&d, 1), 1, nullptr);
    return got.ok() ? "" : got.error().describe();
  }

  CannedServer server_;
  std::unique_ptr<stress::HttpTarget> target_;
};

TEST_F(HttpTargetAnswers, ATopologyAnswerWithoutABacklogLeavesIdlenessToTheStore) {
  topology("{}");
  auto r = idle();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_TRUE(*r);
}

TEST_F(HttpTargetAnswers, UnknownFiguresFallBackToTheAnsweringProcesssOwnPart) {
  // What pubsub:// answers: the subscription's figures unknown (null), this client's known.
  topology(R"({"backlog":{"undelivered":null,"in_flight":null,"unknown":["undelivered"],)"
           R"("client":{"in_flight":0,"held":3,"dead_lettered":0}}})");
  auto r = idle();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_FALSE(*r) << "three held messages of the merge stage are work left";
  topology(R"({"backlog":{"undelivered":null,"in_flight":null,)"
           R"("client":{"in_flight":0,"held":0,"dead_lettered":4}}})");
  r = idle();
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_TRUE(*r);
}

TEST_F(HttpTargetAnswers, KnownFiguresDecide) {
  topology(R"({"backlog":{"undelivered":2,"in_flight":0}})");
  ASSERT_TRUE(idle().ok());
  EXPECT_FALSE(*idle());
  // Retry copies waiting out a backoff (undelivered) do not count; one in flight does.
  topology(R"({"backlog":{"undelivered":0,"in_flight":0}})",
           R"({"backlog":{"undelivered":7,"in_flight":0}})");
  EXPECT_TRUE(*idle());
  topology(R"({"backlog":{"undelivered":0,"in_flight":0}})",
           R"({"backlog":{"undelivered":0,"in_flight":1}})");
  EXPECT_FALSE(*idle());
}

TEST_F(HttpTargetAnswers, AMistypedOrMissingTopologyFieldIsAnErrorThatNamesIt) {
  topology(R"({"backlog":{"undelivered":"many","in_flight":0}})");
  auto r = idle();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().describe().find("undelivered"), std::string::npos) << r.error().describe();

  topology(R"({"backlog":{"undelivered":null,"in_flight":null,"client":{"in_flight":0}}})");
  r = idle();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().describe().find("held"), std::string::npos) << r.error().describe();

  topology(R"({"backlog":7})");
  EXPECT_FALSE(idle().ok());

  server_.set("GET /v1/envs/sandbox/topology", 200, R"({"subscriptions":{}})");
  r = idle();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().describe().find("subscriptions"), std::string::npos) << r.error().describe();

  server_.set("GET /v1/envs/sandbox/topology", 200, R"({"subscriptions":[{"backlog":{}}]})");
  r = idle();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().describe().find("name"), std::string::npos) << r.error().describe();
}

TEST_F(HttpTargetAnswers, ATruncatedAnswerIsDataLoss) {
  server_.set("GET /v1/envs/sandbox/topology", 200, R"({"subscriptions":[{"name":"ev)");
  auto r = idle();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), Errc::kDataLoss);
  EXPECT_NE(r.error().describe().find("not JSON"), std::string::npos) << r.error().describe();
}

TEST_F(HttpTargetAnswers, AnIngestAnswerMustNameEveryEventWithAWellFormedId) {
  EXPECT_NE(ingest_error(R"({})").find("events"), std::string::npos);
  EXPECT_NE(ingest_error(R"({"events":[]})").find("0 events for 1 sent"), std::string::npos);
  EXPECT_NE(ingest_error(R"({"events":[{"status":"created"}]})").find("id"), std::string::npos);
  EXPECT_NE(ingest_error(R"({"events":[{"id":12}]})").find("id"), std::string::npos);
  EXPECT_NE(ingest_error(R"({"events":[{"id":"not-an-id"}]})").find("malformed id"),
            std::string::npos);
  EXPECT_NE(ingest_error(R"({"events":[{"id":)").find("not JSON"), std::string::npos);
}

TEST_F(HttpTargetAnswers, APulledMessageMissingAFieldIsAnError) {
  const std::string good_message = R"("message":{"ordering_key":"contact/c1","data":{"version":1},)"
                                   R"("publish_time":"2026-12-02T10:00:00Z"})";
  EXPECT_EQ(merged_error(R"({"received_messages":[{"ack_id":"a1",)" + good_message + "}]}"), "");
  EXPECT_EQ(merged_error(R"({})"), "") << "no received_messages: nothing to read";
  EXPECT_NE(merged_error(R"({"received_messages":[{)" + good_message + "}]}").find("ack_id"),
            std::string::npos);
  EXPECT_NE(merged_error(R"({"received_messages":[{"ack_id":"a1","message":{"data":{}}}]})")
                .find("publish_time"),
            std::string::npos);
  EXPECT_NE(merged_error(R"({"received_messages":[{"ack_id":"a1","message":{"data":{},)"
                         R"("publish_time":"yesterday"}}]})")
                .find("bad publish_time"),
            std::string::npos);
  EXPECT_NE(merged_error(R"({"received_messages":"none"})").find("not an array"),
            std::string::npos);
}

TEST_F(HttpTargetAnswers, ADeadLetterWithoutAnEventIdIsAnError) {
  stress::VerifyInput in;
  target_->use_for(in);
  server_.set("GET /v1/envs/sandbox/dlq", 200, R"({"dead_letters":[{"event":{"id":"e1"}}]})");
  auto got = in.dead_letters();
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_EQ(got->size(), 1u);
  server_.set("GET /v1/envs/sandbox/dlq", 200, R"({"dead_letters":[{"event":{}}]})");
  got = in.dead_letters();
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().describe().find("id"), std::string::npos) << got.error().describe();
  server_.set("GET /v1/envs/sandbox/dlq", 200, R"({"letters":[]})");
  EXPECT_FALSE(in.dead_letters().ok());
}

TEST_F(HttpTargetAnswers, AnErrorAnswerCarriesTheServersMessage) {
  server_.set("GET /v1/envs/sandbox/topology", 503,
              R"({"error":{"code":"unavailable","message":"the store is down"}})");
  auto r = idle();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().describe().find("the store is down"), std::string::npos);
  server_.set("GET /v1/envs/sandbox/topology", 500, R"({"error":{"message":42}})");
  r = idle();
  ASSERT_FALSE(r.ok()) << "a mistyped error message is still an error";
  EXPECT_NE(r.error().describe().find("HTTP 500"), std::string::npos);
}

}  // namespace
}  // namespace backbone::testing
