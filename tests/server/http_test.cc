// The HTTP API against a real server on a loopback port, with real stores and broker. The
// stages are driven step by step (no sleeps).
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "backbone/topology.h"
#include "http/raw_connection.h"
#include "server/app.h"
#include "server/http_server.h"
#include "server/local_config.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

using nlohmann::json;

class HttpApi : public ::testing::Test {
 protected:
  void SetUp() override {
    app_ = open_local_app(dir_, clock_);
    ASSERT_NE(app_, nullptr);
    sandbox_ = *app_->create_token("sandbox", "t", {"publish", "read", "subscribe", "admin"});
    production_ = *app_->create_token("production", "p", {"publish", "read"});
    read_only_ = *app_->create_token("sandbox", "r", {"read"});
    http_ = std::make_unique<server::HttpServer>(*app_);
    ASSERT_TRUE(http_->bind("127.0.0.1:0").ok());
    thread_ = std::thread([this] { http_->run(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", http_->port());
    client_->set_connection_timeout(5);
    client_->set_read_timeout(30);
  }
  void TearDown() override {
    http_->stop();
    thread_.join();
  }
  httplib::Result post(const std::string& path, const std::string& body, const std::string& token,
                       const std::string& type = "application/json") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return client_->Post(path, h, body, type);
  }
  httplib::Result get(const std::string& path, const std::string& token) {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return client_->Get(path, h);
  }
  static std::string event(const std::string& id, uint64_t base, const std::string& changes) {
    return R"({"record_type":"contact","record_id":")" + id +
           R"(","source":"crm","base_version":)" + std::to_string(base) + R"(,"changes":)" +
           changes + "}";
  }
  // Posts `n` events, each making record `prefix`0, `prefix`1, ... at version 1 (201 each).
  void post_new_records(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      auto r = post("/v1/envs/sandbox/events", event(prefix + std::to_string(i), 0, R"({"a":1})"),
                    sandbox_);
      ASSERT_EQ(r->status, 201) << r->body;
    }
  }
  size_t audit_entries(const std::string& env) {
    auto p = app_->pipeline(env);
    return (*p)->ingest_store().scan_audit(std::nullopt, 100'000)->size();
  }
  void step(const std::string& env = "sandbox") {
    ASSERT_TRUE((*app_->pipeline(env))->step().ok());
  }

  ManualClock clock_;
  TempDir dir_;
  std::unique_ptr<server::App> app_;
  std::unique_ptr<server::HttpServer> http_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
  std::string sandbox_, production_, read_only_;
};

// The documented path with a sample value for each {parameter}.
std::string sample(const std::string& templ) {
  static const std::map<std::string, std::string> values = {
      {"env", "sandbox"},         {"id", "01a2205c-d11c-7327-b6d6-f43dd781f1e7"},
      {"record_type", "contact"}, {"record_id", "42"},
      {"token_id", "t1"},         {"subscription", "sync"},
      {"file", "console.js"},     {"message_id", "m1"}};
  std::string out;
  for (size_t i = 0; i < templ.size();) {
    if (templ[i] != '{') {
      out += templ[i++];
      continue;
    }
    const size_t end = templ.find('}', i);
    const std::string name = templ.substr(i + 1, end - i - 1);
    auto v = values.find(name);
    out += v == values.end() ? "unknown-parameter-" + name : v->second;
    i = end + 1;
  }
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// GET /v1/openapi.json of the server on `port`, parsed (null when it is not JSON).
json openapi_document(httplib::Client& c) {
  auto r = c.Get("/v1/openapi.json");
  if (!r || r->status != 200) return nullptr;
  return json::parse(r->body, nullptr, false);
}

// Every documented operation: method and sample path.
std::vector<std::pair<std::string, std::string>> openapi_operations(const json& doc) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, op] : item.items()) out.emplace_back(upper(method), sample(path));
  }
  return out;
}

TEST_F(HttpApi, APostedEventIsMergedAndReadBack) {
  auto r = post("/v1/envs/sandbox/events", event("42", 0, R"({"name":"Ada"})"), sandbox_);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  auto created = json::parse(r->body);
  const std::string id = created["events"][0]["id"];
  EXPECT_EQ(created["events"][0]["duplicate"], false);
  step();
  auto rec = get("/v1/envs/sandbox/records/contact/42", sandbox_);
  ASSERT_EQ(rec->status, 200) << rec->body;
  auto j = json::parse(rec->body);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["state"]["name"], "Ada");
  auto ev = get("/v1/envs/sandbox/events/" + id, sandbox_);
  ASSERT_EQ(ev->status, 200);
  EXPECT_EQ(json::parse(ev->body)["processed"], true);
  auto hist = get("/v1/envs/sandbox/records/contact/42/events", sandbox_);
  EXPECT_EQ(json::parse(hist->body)["events"].size(), 1u);
  auto audit = get("/v1/envs/sandbox/records/contact/42/audit", sandbox_);
  EXPECT_EQ(json::parse(audit->body)["audit"].size(), 2u);  // ingested, merged
  // Reached already: answered at once, whatever the wait.
  auto reached = get("/v1/envs/sandbox/records/contact/42?min_version=1&wait_ms=30000", sandbox_);
  ASSERT_EQ(reached->status, 200) << reached->body;
  EXPECT_EQ(json::parse(reached->body)["version"], 1);
  for (const char* bad : {"?min_version=x", "?min_version=-1", "?wait_ms=30001", "?wait_ms=1e3"}) {
    auto refused = get(std::string("/v1/envs/sandbox/records/contact/42") + bad, sandbox_);
    EXPECT_EQ(refused->status, 400) << bad << ": " << refused->body;
  }
}

// The timeline route: each event of a record with the decision the audit log records for it.
TEST_F(HttpApi, TheTimelineShowsEachEventsMergeDecision) {
  const std::string batch =
      "[" + event("t1", 0, R"({"a":1})") + "," + event("t1", 1, R"({"b":1})") + "," +
      event("t1", 1, R"({"c":1})") + "," +  // an older base, on a field nobody changed: rebased
      event("t1", 1, R"({"b":5})") + "," +  // b changed at v2, after its base: a conflict
      event("t1", 9, R"({"d":1})") + "]";   // based on a version not there yet: parked
  ASSERT_EQ(post("/v1/envs/sandbox/events", batch, sandbox_)->status, 201);
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("t1", 0, R"({"a":1})"), sandbox_)->status, 201);
  step();
  auto r = get("/v1/envs/sandbox/records/contact/t1/timeline", sandbox_);
  ASSERT_EQ(r->status, 200) << r->body;
  const json t = json::parse(r->body);
  EXPECT_EQ(t["record_id"], "t1");
  const json& events = t["events"];
  ASSERT_EQ(events.size(), 5u) << r->body;
  const std::vector<std::pair<std::string, json>> want = {{"fast-forward", 1},
                                                          {"fast-forward", 2},
                                                          {"rebased", 3},
                                                          {"dead-lettered", nullptr},
                                                          {"parked", nullptr}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(events[i]["decision"], want[i].first) << i << ": " << events[i].dump();
    EXPECT_EQ(events[i]["version"], want[i].second) << i;
    EXPECT_EQ(events[i]["audit"][0]["action"], "ingested") << i;
  }
  EXPECT_EQ(events[0]["duplicates"], 1);
  EXPECT_NE(events[3]["reason"].get<std::string>().find("conflict"), std::string::npos)
      << events[3].dump();
  EXPECT_EQ(get("/v1/envs/sandbox/records/contact/t1/timeline", read_only_)->status, 200);
  EXPECT_EQ(get("/v1/envs/sandbox/records/contact/t1/timeline", production_)->status, 403);
  EXPECT_EQ(get("/v1/envs/sandbox/records/Bad/t1/timeline", sandbox_)->status, 400);
}

TEST_F(HttpApi, ABatchIsStoredWholeAndMarksDuplicates) {
  const std::string batch = "[" + event("1", 0, R"({"a":1})") + "," + event("1", 1, R"({"a":2})") +
                            "," + event("1", 0, R"({"a":1})") + "]";
  auto r = post("/v1/envs/sandbox/events", batch, sandbox_);
  ASSERT_EQ(r->status, 201) << r->body;
  auto j = json::parse(r->body)["events"];
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[2]["duplicate"], true);
  EXPECT_EQ(j[2]["id"], j[0]["id"]);
  step();
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/records/contact/1", sandbox_)->body)["version"], 2);
}

TEST_F(HttpApi, BadRequestsGetTheirStatusAndChangeNothing) {
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("1", 0, R"({"a":1})"), sandbox_)->status, 201);
  const size_t sandbox_before = audit_entries("sandbox");
  const size_t production_before = audit_entries("production");
  std::string big(2 * 1024 * 1024, ' ');
  std::string batch = "[";
  for (int i = 0; i < 1001; ++i) batch += (i ? "," : "") + event(std::to_string(i), 0, "{}");
  batch += "]";
  struct Case {
    std::string name;
    int status;
    std::string code;
    std::function<httplib::Result()> call;
    std::string details = "";
  };
  const std::vector<Case> cases = {
      {"malformed JSON", 400, "invalid_argument",
       [&] {
         return post("/v1/envs/sandbox/events", R"({"record_type": "contact", oops})", sandbox_);
       },
       "body"},
      {"truncated body", 400, "invalid_argument",
       [&] { return post("/v1/envs/sandbox/events", event("2", 0, "{}").substr(0, 30), sandbox_); },
       "body"},
      {"wrong type", 400, "invalid_argument",
       [&] {
         return post(
             "/v1/envs/sandbox/events",
             R"({"record_type":"contact","record_id":7,"source":"crm","base_version":0,"changes":{}})",
             sandbox_);
       },
       "record_id"},
      {"bad item in a batch", 400, "invalid_argument",
       [&] {
         return post("/v1/envs/sandbox/events",
                     "[" + event("3", 0, R"({"a":1})") + "," + event("Bad Id\\n", 0, "{}") + "]",
                     sandbox_);
       },
       "events[1].record_id"},
      {"unknown environment", 404, "not_found",
       [&] { return post("/v1/envs/staging/events", event("4", 0, "{}"), sandbox_); }},
      {"token of the other environment", 403, "permission_denied",
       [&] { return post("/v1/envs/sandbox/events", event("5", 0, "{}"), production_); }},
      {"sandbox token on production", 403, "permission_denied",
       [&] { return get("/v1/envs/production/records/contact/1", sandbox_); }},
      {"role missing", 403, "permission_denied",
       [&] { return post("/v1/envs/sandbox/events", event("6", 0, "{}"), read_only_); }},
      {"no token", 401, "unauthenticated",
       [&] { return post("/v1/envs/sandbox/events", event("7", 0, "{}"), ""); }},
      {"unknown token", 401, "unauthenticated",
       [&] { return post("/v1/envs/sandbox/events", event("8", 0, "{}"), "bb_sandbox_nope"); }},
      {"2 MiB body", 413, "too_large",
       [&] { return post("/v1/envs/sandbox/events", big, sandbox_); }},
      {"1001-event batch", 413, "too_large",
       [&] { return post("/v1/envs/sandbox/events", batch, sandbox_); }},
      {"invalid UUID in the path", 400, "invalid_argument",
       [&] {
         return get("/v1/envs/sandbox/events/01A2205C-D11C-7327-B6D6-F43DD781F1E7", sandbox_);
       },
       "id"},
      {"wrong content type", 415, "unsupported_media_type",
       [&] {
         return post("/v1/envs/sandbox/events", event("9", 0, "{}"), sandbox_, "text/plain");
       }},
      {"unknown event", 404, "not_found",
       [&] {
         return get("/v1/envs/sandbox/events/01a2205c-d11c-7327-b6d6-f43dd781f1e7", sandbox_);
       }},
  };
  for (const auto& c : cases) {
    auto r = c.call();
    ASSERT_TRUE(r) << c.name;
    EXPECT_EQ(r->status, c.status) << c.name << ": " << r->body;
    auto body = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << c.name << ": " << r->body;
    EXPECT_EQ(body["error"]["code"], c.code) << c.name;
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty()) << c.name;
    if (!c.details.empty()) {
      EXPECT_EQ(body["error"]["details"], c.details) << c.name;
    }
  }
  EXPECT_EQ(audit_entries("sandbox"), sandbox_before);
  EXPECT_EQ(audit_entries("production"), production_before);
}

TEST_F(HttpApi, ExternalConsumersPullAndAckTheSyncSubscription) {
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("1", 0, R"({"a":1})"), sandbox_)->status, 201);
  step();
  auto pulled =
      post("/v1/envs/sandbox/subscriptions/sync:pull", R"({"max_messages":10})", sandbox_);
  ASSERT_EQ(pulled->status, 200) << pulled->body;
  auto msgs = json::parse(pulled->body)["received_messages"];
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["message"]["data"]["version"], 1);
  EXPECT_EQ(msgs[0]["message"]["ordering_key"], "contact:1");
  const std::string ack_id = msgs[0]["ack_id"];
  auto mod = post("/v1/envs/sandbox/subscriptions/sync:modifyAckDeadline",
                  json{{"ack_ids", {ack_id}}, {"ack_deadline_seconds", 120}}.dump(), sandbox_);
  EXPECT_EQ(mod->status, 200) << mod->body;
  auto acked = post("/v1/envs/sandbox/subscriptions/sync:acknowledge",
                    json{{"ack_ids", {ack_id}}}.dump(), sandbox_);
  ASSERT_EQ(acked->status, 200);
  EXPECT_EQ(json::parse(acked->body)["acknowledged"], 1);
  clock_.advance_micros(600 * kSecond);
  auto again = post("/v1/envs/sandbox/subscriptions/sync:pull", "{}", sandbox_);
  EXPECT_TRUE(json::parse(again->body)["received_messages"].empty());
  EXPECT_EQ(post("/v1/envs/sandbox/subscriptions/sync:pull", "{}", read_only_)->status, 403);
  EXPECT_EQ(post("/v1/envs/sandbox/subscriptions/audit:pull", "{}", sandbox_)->status, 404);
}

TEST_F(HttpApi, AnAdminSeeksTheSyncSubscriptionAndTheAdminAuditSaysSo) {
  const Timestamp before = clock_.now();
  clock_.advance_micros(kSecond);
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("1", 0, R"({"a":1})"), sandbox_)->status, 201);
  step();
  auto pull = [&] {
    auto r = post("/v1/envs/sandbox/subscriptions/sync:pull", R"({"max_messages":10})", sandbox_);
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["received_messages"];
  };
  auto msgs = pull();
  ASSERT_EQ(msgs.size(), 1u);
  ASSERT_EQ(post("/v1/envs/sandbox/subscriptions/sync:acknowledge",
                 json{{"ack_ids", {msgs[0]["ack_id"]}}}.dump(), sandbox_)
                ->status,
            200);
  EXPECT_TRUE(pull().empty());
  const std::string seek = json{{"time", before.to_rfc3339()}}.dump();
  EXPECT_EQ(post("/v1/envs/sandbox/subscriptions/sync:seek", seek, read_only_)->status, 403);
  auto sought = post("/v1/envs/sandbox/subscriptions/sync:seek", seek, sandbox_);
  ASSERT_EQ(sought->status, 200) << sought->body;
  auto again = pull();
  ASSERT_EQ(again.size(), 1u);  // merged once, delivered again
  EXPECT_EQ(again[0]["message"]["ordering_key"], "contact:1");
  auto acts = json::parse(get("/v1/envs/sandbox/admin-audit", sandbox_)->body);
  bool audited = false;
  for (const auto& a : acts["actions"]) {
    audited |= a["action"] == "subscription.seek" && a["target"] == "events.merged.sandbox.sync";
  }
  EXPECT_TRUE(audited) << acts.dump();
  // Bad input, and nothing sought.
  EXPECT_EQ(
      post("/v1/envs/sandbox/subscriptions/sync:seek", R"({"time":"yesterday"})", sandbox_)->status,
      400);
  EXPECT_EQ(post("/v1/envs/sandbox/subscriptions/sync:seek",
                 R"({"time":"2026-01-01T00:00:00Z","snapshot":"s"})", sandbox_)
                ->status,
            400);
  EXPECT_EQ(
      post("/v1/envs/sandbox/subscriptions/sync:seek", R"({"snapshot":"none"})", sandbox_)->status,
      404);
  EXPECT_EQ(post("/v1/envs/sandbox/subscriptions/nothing:seek", seek, sandbox_)->status, 404);
  EXPECT_TRUE(pull().empty());
}

TEST_F(HttpApi, DeadLettersAreListedAndReplayed) {
  const std::string batch = "[" + event("1", 0, R"({"a":1})") + "," + event("1", 1, R"({"a":2})") +
                            "," + event("1", 1, R"({"a":3})") + "]";
  auto r = post("/v1/envs/sandbox/events", batch, sandbox_);
  const std::string rejected = json::parse(r->body)["events"][2]["id"];
  step();
  auto list = get("/v1/envs/sandbox/dlq", sandbox_);
  ASSERT_EQ(list->status, 200);
  auto dl = json::parse(list->body)["dead_letters"];
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["event"]["id"], rejected);
  // As `curl -X POST` sends it: no body, no Content-Length. (cpp-httplib answered it 400.)
  RawConnection raw;
  ASSERT_TRUE(raw.connect(http_->port()));
  ASSERT_TRUE(raw.send("POST /v1/envs/sandbox/dlq/" + rejected +
                       ":replay HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + sandbox_ +
                       "\r\nConnection: close\r\n\r\n"));
  const std::string answer = raw.receive_until("\r\n\r\n", 10'000);
  EXPECT_EQ(answer.rfind("HTTP/1.1 202", 0), 0u) << answer;
  EXPECT_EQ(post("/v1/envs/sandbox/dlq/" + rejected + ":replay", "", read_only_)->status, 403);
  step();  // it conflicts again under `reject`: back in the DLQ
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/dlq", sandbox_)->body)["dead_letters"].size(), 1u);
  // The replay is in the admin audit, with who did it; the refused one is not.
  auto audit = get("/v1/envs/sandbox/admin-audit", sandbox_);
  ASSERT_EQ(audit->status, 200) << audit->body;
  const json acts = json::parse(audit->body)["actions"];
  ASSERT_FALSE(acts.empty());
  EXPECT_EQ(acts.back()["action"], "dlq.replay");
  EXPECT_EQ(acts.back()["target"], rejected);
  EXPECT_EQ(std::string(acts.back()["actor"]).rfind("token ", 0), 0u) << acts.back();
  EXPECT_NE(std::string(acts.back()["actor"]).find("(t)"), std::string::npos) << acts.back();
  size_t replays = 0;
  for (const auto& a : acts) replays += a["action"] == "dlq.replay";
  EXPECT_EQ(replays, 1u);
}

// The DLQ routes an operator resolves with: filtered and paged lists, one with its history, a
// dry run of a bulk replay, and accept and discard, each in the admin audit.
TEST_F(HttpApi, DeadLettersAreFilteredPreviewedAndResolved) {
  std::string batch = "[";
  for (int r = 0; r < 3; ++r) {
    const std::string id = "c" + std::to_string(r);
    batch += (r ? "," : "") + event(id, 0, R"({"a":1})") + "," + event(id, 1, R"({"a":2})") + "," +
             event(id, 1, R"({"a":3})");  // a conflict under `reject`
  }
  auto posted = post("/v1/envs/sandbox/events", batch + "]", sandbox_);
  ASSERT_EQ(posted->status, 201) << posted->body;
  const json ids = json::parse(posted->body)["events"];
  step();
  auto all = get("/v1/envs/sandbox/dlq?limit=2", sandbox_);
  ASSERT_EQ(all->status, 200) << all->body;
  EXPECT_EQ(json::parse(all->body)["total"], 3);
  EXPECT_EQ(json::parse(all->body)["dead_letters"].size(), 2u);
  EXPECT_EQ(
      json::parse(get("/v1/envs/sandbox/dlq?offset=2", sandbox_)->body)["dead_letters"].size(), 1u);
  EXPECT_EQ(
      json::parse(get("/v1/envs/sandbox/dlq?stage=merge&reason=conflict", sandbox_)->body)["total"],
      3);
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/dlq?record_type=deal", sandbox_)->body)["total"], 0);
  EXPECT_EQ(get("/v1/envs/sandbox/dlq?stage=later", sandbox_)->status, 400);
  EXPECT_EQ(get("/v1/envs/sandbox/dlq?since=yesterday", sandbox_)->status, 400);
  const std::string first = ids[2]["id"], second = ids[5]["id"], third = ids[8]["id"];
  auto one = get("/v1/envs/sandbox/dlq/" + first, sandbox_);
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(json::parse(one->body)["reason"].get<std::string>().rfind("conflict", 0), 0u);
  EXPECT_FALSE(json::parse(one->body)["audit"].empty());

  auto dry = post("/v1/envs/sandbox/dlq:replay?dry_run=true", "", sandbox_);
  ASSERT_EQ(dry->status, 200) << dry->body;
  const json preview = json::parse(dry->body);
  EXPECT_EQ(preview["dry_run"], true);
  ASSERT_EQ(preview["dead_letters"].size(), 3u);
  EXPECT_EQ(preview["dead_letters"][0]["event"]["id"], first);  // history order
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/dlq", sandbox_)->body)["total"], 3);
  EXPECT_EQ(post("/v1/envs/sandbox/dlq:replay?dry_run=true", "", read_only_)->status, 403);
  EXPECT_EQ(post("/v1/envs/sandbox/dlq:replay?dry_run=maybe", "", sandbox_)->status, 400);

  auto resolve = [&](const std::string& id, const std::string& body) {
    return post("/v1/envs/sandbox/dlq/" + id + ":resolve", body, sandbox_);
  };
  EXPECT_EQ(resolve(first, R"({"resolution":"later"})")->status, 400);
  EXPECT_EQ(resolve(first, R"({"resolution":"accept","note":7})")->status, 400);
  EXPECT_EQ(resolve(first, "{oops")->status, 400);
  auto accepted = resolve(first, R"({"resolution":"accept","note":"the CRM is right"})");
  ASSERT_EQ(accepted->status, 202) << accepted->body;
  ASSERT_EQ(resolve(second, R"({"resolution":"discard"})")->status, 202);
  EXPECT_EQ(resolve(second, R"({"resolution":"discard"})")->status, 404);
  step();
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/records/contact/c0", sandbox_)->body)["state"]["a"],
            3);
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/records/contact/c1", sandbox_)->body)["state"]["a"],
            2);
  const json left = json::parse(get("/v1/envs/sandbox/dlq", sandbox_)->body);
  ASSERT_EQ(left["total"], 1);
  EXPECT_EQ(left["dead_letters"][0]["event"]["id"], third);
  const json timeline =
      json::parse(get("/v1/envs/sandbox/records/contact/c0/timeline", sandbox_)->body);
  EXPECT_EQ(timeline["events"][2]["decision"], "accepted");
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/records/contact/c1/timeline", sandbox_)
                            ->body)["events"][2]["decision"],
            "discarded");
  const json acts = json::parse(get("/v1/envs/sandbox/admin-audit", sandbox_)->body)["actions"];
  std::vector<std::string> names;
  for (const auto& a : acts) names.push_back(a["action"]);
  EXPECT_NE(std::find(names.begin(), names.end(), "dlq.accept"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "dlq.discard"), names.end());
}

TEST_F(HttpApi, ASecondServerCannotTakeTheSamePort) {
  server::HttpServer second(*app_);
  auto bound = second.bind("127.0.0.1:" + std::to_string(http_->port()));
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.code(), Errc::kUnavailable);
}

TEST_F(HttpApi, ATokenMadeWhileServingIsKnownAtOnce) {
  // Another process (`backbone token create`) adds a token to the environment's store.
  StoreOptions so;
  so.url = "sqlite://" + dir_.file("sandbox.db");
  so.role = Role::kMigrator;
  auto other = EventStore::open(so);
  ASSERT_TRUE(other.ok());
  clock_.advance_millis(200);  // past the last read of the tokens on a miss
  auto late = auth::create_token(**other, "sandbox", "late", {"read"}, {}, clock_.now(), "test");
  ASSERT_TRUE(late.ok());
  auto r = get("/v1/envs/sandbox/dlq", late->token);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // And the server's own tokens are still there.
  r = get("/v1/envs/sandbox/dlq", read_only_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(get("/v1/envs/sandbox/dlq", "bb_sandbox_unknown")->status, 401);
}

// The token routes: an admin lists, makes (shown once) and revokes its environment's tokens;
// a token may not grant more than it may do; bad bodies get a clear 400.
TEST_F(HttpApi, AnAdminMakesListsAndRevokesTokensOfItsEnvironment) {
  auto made = post("/v1/envs/sandbox/tokens",
                   R"({"name":"deploy","roles":["publish","read"],"ttl_seconds":3600})", sandbox_);
  ASSERT_TRUE(made);
  ASSERT_EQ(made->status, 201) << made->body;
  const json m = json::parse(made->body);
  const std::string token = m["token"];
  EXPECT_EQ(m["name"], "deploy");
  EXPECT_EQ(m["roles"], json::array({"publish", "read"}));
  EXPECT_EQ(m["expires_at"],
            Timestamp::from_micros(clock_.now().micros() + 3600 * kSecond).to_rfc3339());
  EXPECT_EQ(get("/v1/envs/sandbox/dlq", token)->status, 200);
  // A token with a ttl: refused with 401 once it expired, saying so.
  auto brief = post("/v1/envs/sandbox/tokens",
                    R"({"name":"brief","roles":["read"],"ttl_seconds":60})", sandbox_);
  ASSERT_EQ(brief->status, 201) << brief->body;
  const std::string brief_token = json::parse(brief->body)["token"];
  EXPECT_EQ(get("/v1/envs/sandbox/dlq", brief_token)->status, 200);
  clock_.advance_millis(60'000);
  auto expired = get("/v1/envs/sandbox/dlq", brief_token);
  EXPECT_EQ(expired->status, 401);
  EXPECT_NE(expired->body.find("expired at"), std::string::npos) << expired->body;
  EXPECT_EQ(json::parse(expired->body)["error"]["code"], "unauthenticated");
  auto list = get("/v1/envs/sandbox/tokens", sandbox_);
  ASSERT_EQ(list->status, 200) << list->body;
  const json tokens = json::parse(list->body)["tokens"];
  ASSERT_EQ(tokens.size(), 4u);  // t, r, deploy and brief (p is production's)
  EXPECT_EQ(list->body.find(token), std::string::npos) << "a list never shows a token";
  EXPECT_EQ(get("/v1/envs/sandbox/tokens", read_only_)->status, 403);
  EXPECT_EQ(get("/v1/envs/production/tokens", sandbox_)->status, 403);

  // Bad input.
  for (const char* body :
       {R"({"roles":"read"})", R"({"roles":[1]})", R"({"name":7,"roles":["read"]})",
        R"({"roles":["root"]})", R"({"roles":[]})", R"({"roles":["read"],"ttl_seconds":0})",
        R"({"roles":["read"],"ttl_seconds":"1"})", R"([1])", R"({"roles":)"}) {
    auto r = post("/v1/envs/sandbox/tokens", body, sandbox_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body << ": " << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["code"], "invalid_argument") << body;
  }
  auto pipeline = post("/v1/envs/sandbox/tokens", R"({"roles":["pipeline"]})", sandbox_);
  EXPECT_EQ(pipeline->status, 403) << pipeline->body;

  // Revoked, it stops here at once.
  auto revoked = post("/v1/envs/sandbox/tokens/" + std::string(m["id"]) + ":revoke", "", sandbox_);
  ASSERT_EQ(revoked->status, 200) << revoked->body;
  EXPECT_EQ(json::parse(revoked->body)["revoked"], true);
  auto refused = get("/v1/envs/sandbox/dlq", token);
  EXPECT_EQ(refused->status, 401);
  EXPECT_NE(refused->body.find("was revoked"), std::string::npos) << refused->body;
  EXPECT_EQ(post("/v1/envs/sandbox/tokens/nothing:revoke", "", sandbox_)->status, 404);

  // The admin audit: each act with who did it (the admin token "t"), in order; admins only.
  auto audit = get("/v1/envs/sandbox/admin-audit", sandbox_);
  ASSERT_EQ(audit->status, 200) << audit->body;
  const json acts = json::parse(audit->body)["actions"];
  ASSERT_GE(acts.size(), 3u);
  const json& made_deploy = acts[acts.size() - 3];
  const json& made_brief = acts[acts.size() - 2];
  const json& revoked_deploy = acts[acts.size() - 1];
  EXPECT_EQ(made_deploy["action"], "token.create");
  EXPECT_EQ(made_deploy["target"], m["id"]);
  EXPECT_EQ(made_deploy["detail"]["name"], "deploy");
  EXPECT_EQ(made_deploy["detail"]["roles"], json::array({"publish", "read"}));
  EXPECT_EQ(made_brief["detail"]["name"], "brief");
  EXPECT_EQ(revoked_deploy["action"], "token.revoke");
  EXPECT_EQ(revoked_deploy["target"], m["id"]);
  for (const json* a : {&made_deploy, &made_brief, &revoked_deploy}) {
    const std::string actor = (*a)["actor"];
    EXPECT_EQ(actor.rfind("token ", 0), 0u) << actor;
    EXPECT_NE(actor.find(" (t)"), std::string::npos) << actor;
    EXPECT_EQ(actor.find(sandbox_), std::string::npos) << "the audit never holds a token";
  }
  EXPECT_EQ(audit->body.find(token), std::string::npos) << "the audit never holds a token";
  // Paging, and bad input.
  auto page =
      get("/v1/envs/sandbox/admin-audit?limit=1&after=" + std::string(made_deploy["id"]), sandbox_);
  ASSERT_EQ(page->status, 200) << page->body;
  ASSERT_EQ(json::parse(page->body)["actions"].size(), 1u);
  EXPECT_EQ(json::parse(page->body)["actions"][0]["id"], made_brief["id"]);
  EXPECT_EQ(get("/v1/envs/sandbox/admin-audit?after=nope", sandbox_)->status, 400);
  EXPECT_EQ(get("/v1/envs/sandbox/admin-audit?limit=0", sandbox_)->status, 400);
  EXPECT_EQ(get("/v1/envs/sandbox/admin-audit", read_only_)->status, 403);
}

TEST_F(HttpApi, HealthReadinessAndMetrics) {
  EXPECT_EQ(get("/healthz", "")->status, 200);
  auto ready = get("/readyz", "");
  EXPECT_EQ(ready->status, 200) << ready->body;
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("1", 0, R"({"a":1})"), sandbox_)->status, 201);
  step();
  auto m = get("/metrics", "");
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("backbone_ingested_events_total{env=\"sandbox\"} 1"), std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("backbone_merged_events_total{env=\"sandbox\",kind=\"fast_forward\"} 1"),
            std::string::npos);
  EXPECT_NE(m->body.find("# TYPE backbone_ingest_to_merged_seconds histogram"), std::string::npos);
  EXPECT_NE(m->body.find("backbone_subscription_undelivered{env=\"sandbox\",subscription="),
            std::string::npos);
  EXPECT_EQ(get("/nope", "")->status, 404);
  EXPECT_EQ(json::parse(get("/nope", "")->body)["error"]["code"], "not_found");
}

// The OpenAPI document (doc/openapi.json, GET /v1/openapi.json) against the server itself:
// every route the server registers is documented, and every documented operation reaches a
// route (an answer that is not the router's own 404 or 405).
TEST_F(HttpApi, OpenApiTheDocumentIsOpenApi31WithItsPaths) {
  const json doc = openapi_document(*client_);
  ASSERT_TRUE(doc.is_object()) << "the document is not JSON";
  EXPECT_EQ(doc["openapi"], "3.1.0");
  EXPECT_GE(doc["paths"].size(), 20u);
}

TEST_F(HttpApi, OpenApiEveryRegisteredRouteIsDocumented) {
  const json doc = openapi_document(*client_);
  ASSERT_TRUE(doc.is_object());
  const auto ops = openapi_operations(doc);
  for (const auto& route : http_->router().routes()) {
    const std::regex pattern(route.pattern);
    bool documented = false;
    for (const auto& [method, path] : ops) {
      documented = documented || (method == route.method && std::regex_match(path, pattern));
    }
    EXPECT_TRUE(documented) << route.method << " " << route.pattern
                            << " is not in doc/openapi.json";
  }
}

TEST_F(HttpApi, OpenApiEveryDocumentedOperationReachesARoute) {
  const json doc = openapi_document(*client_);
  ASSERT_TRUE(doc.is_object());
  const auto ops = openapi_operations(doc);
  ASSERT_FALSE(ops.empty());
  for (const auto& [method, path] : ops) {
    httplib::Result r = method == "GET" ? get(path, sandbox_) : post(path, "{}", sandbox_);
    ASSERT_TRUE(r) << method << " " << path << ": no answer";
    const json body = json::parse(r->body, nullptr, false);
    const std::string message =
        body.is_object() && body.contains("error") ? body["error"].value("message", "") : "";
    EXPECT_NE(r->status, 405) << method << " " << path << ": " << r->body;
    EXPECT_EQ(message.rfind("no route for", 0), std::string::npos)
        << method << " " << path << " reaches no route";
  }
}

TEST_F(HttpApi, ConsoleFilesAreServedWithAStrictContentSecurityPolicy) {
  for (const std::string path : {"/console", "/console/", "/console/console.js",
                                 "/console/console.css", "/console/index.html"}) {
    auto r = client_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    const std::string csp = r->get_header_value("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << path << ": " << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << path;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  }
  auto page = client_->Get("/console");
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  // No inline script or style, which the policy would block; the files it names exist.
  EXPECT_EQ(page->body.find("<script>"), std::string::npos);
  EXPECT_EQ(page->body.find("<style"), std::string::npos);
  EXPECT_EQ(page->body.find(" style="), std::string::npos);
  EXPECT_NE(page->body.find("src=\"/console/console.js\""), std::string::npos);
  EXPECT_EQ(client_->Get("/console/console.js")->get_header_value("Content-Type"),
            "text/javascript; charset=utf-8");
  auto missing = client_->Get("/console/nothing.js");
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("the console has no file"), std::string::npos);
  EXPECT_EQ(client_->Get("/console/../v1/whoami")->status, 404);
}

TEST_F(HttpApi, WhoamiNamesTheTokensEnvironmentAndPermissions) {
  auto r = get("/v1/whoami", sandbox_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["env"], "sandbox");
  EXPECT_EQ(j["name"], "t");
  EXPECT_EQ(j["production"], false);
  EXPECT_EQ(j["served"], true);
  EXPECT_EQ(j["permissions"], json({"publish", "subscribe", "read", "admin"}));
  auto p = json::parse(get("/v1/whoami", production_)->body);
  EXPECT_EQ(p["env"], "production");
  EXPECT_EQ(p["production"], true);
  EXPECT_EQ(get("/v1/whoami", "")->status, 401);
  EXPECT_EQ(get("/v1/whoami", "bb_sandbox_nope")->status, 401);
}

TEST_F(HttpApi, StatsCountWhatThisProcessIngestedAndMerged) {
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("s1", 0, R"({"a":1})"), sandbox_)->status, 201);
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("s2", 0, R"({"a":1})"), sandbox_)->status, 201);
  step();
  auto r = get("/v1/envs/sandbox/stats", read_only_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["ingested"], 2);
  EXPECT_EQ(j["merged_total"], 2);
  EXPECT_EQ(j["merged"]["fast_forward"], 2);
  EXPECT_EQ(j["dead_lettered"], 0);
  EXPECT_EQ(j["ingest_to_merged"]["count"], 2);
  EXPECT_EQ(j["ingest_to_merged"]["bounds"].size() + 1, j["ingest_to_merged"]["cumulative"].size());
  EXPECT_EQ(get("/v1/envs/production/stats", sandbox_)->status, 403);
  EXPECT_EQ(get("/v1/envs/nowhere/stats", sandbox_)->status, 404);
}

TEST_F(HttpApi, ARecordAsOfAVersionIsFoldedFromItsAuditEntries) {
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("v", 0, R"({"a":1,"b":1})"), sandbox_)->status,
            201);
  step();
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("v", 1, R"({"a":2})"), sandbox_)->status, 201);
  step();
  ASSERT_EQ(post("/v1/envs/sandbox/events", event("v", 2, R"({"b":null,"c":3})"), sandbox_)->status,
            201);
  step();
  auto at = [&](int v) {
    return get("/v1/envs/sandbox/records/contact/v?version=" + std::to_string(v), sandbox_);
  };
  EXPECT_EQ(json::parse(at(1)->body)["state"], json::parse(R"({"a":1,"b":1})"));
  EXPECT_EQ(json::parse(at(2)->body)["state"], json::parse(R"({"a":2,"b":1})"));
  EXPECT_EQ(json::parse(at(2)->body)["version"], 2);
  auto now = json::parse(get("/v1/envs/sandbox/records/contact/v", sandbox_)->body);
  EXPECT_EQ(json::parse(at(3)->body)["state"], now["state"]);
  EXPECT_EQ(json::parse(at(3)->body)["field_versions"], now["field_versions"]);
  EXPECT_EQ(at(4)->status, 404);
  EXPECT_EQ(at(0)->status, 400);
  EXPECT_EQ(get("/v1/envs/sandbox/records/contact/v?version=x", sandbox_)->status, 400);
}

TEST_F(HttpApi, EventsAreFoundByFingerprint) {
  auto made = post("/v1/envs/sandbox/events", event("f", 0, R"({"a":1})"), sandbox_);
  ASSERT_EQ(made->status, 201);
  const std::string id = json::parse(made->body)["events"][0]["id"];
  const std::string fp =
      json::parse(get("/v1/envs/sandbox/events/" + id, sandbox_)->body)["fingerprint"];
  auto r = get("/v1/envs/sandbox/events?fingerprint=" + fp, read_only_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  ASSERT_EQ(j["events"].size(), 1u);
  EXPECT_EQ(j["events"][0]["id"], id);
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/events?fingerprint=" + std::string(64, '0'), sandbox_)
                            ->body)["events"]
                .size(),
            0u);
  EXPECT_EQ(get("/v1/envs/sandbox/events?fingerprint=ABC", sandbox_)->status, 400);
  EXPECT_EQ(get("/v1/envs/sandbox/events", sandbox_)->status, 400);
}

TEST_F(HttpApi, TheAuditLogIsPagedAndAnEntryShowsItsChainAround) {
  post_new_records("a", 30);
  step();
  std::vector<std::string> ids;
  std::string after;
  for (int pages = 0; pages < 20; ++pages) {
    auto r = get("/v1/envs/sandbox/audit?limit=7" + (after.empty() ? "" : "&after=" + after),
                 read_only_);
    ASSERT_EQ(r->status, 200) << r->body;
    auto j = json::parse(r->body);
    for (const auto& e : j["audit"]) ids.push_back(e["id"]);
    if (j["next"].is_null()) break;
    after = j["next"];
  }
  EXPECT_EQ(ids.size(), audit_entries("sandbox"));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  // An entry in the middle: its slot's entries on each side, every link intact.
  const std::string mid = ids[ids.size() / 2];
  auto r = get("/v1/envs/sandbox/audit/" + mid + "?context=3", sandbox_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["entry"]["id"], mid);
  const size_t at = j["position"];
  EXPECT_EQ(j["chain"][at]["entry"]["id"], mid);
  EXPECT_LE(j["chain"].size(), 7u);
  EXPECT_GE(j["chain"].size(), 2u);
  for (size_t i = 0; i < j["chain"].size(); ++i) {
    if (i == 0) {
      EXPECT_TRUE(j["chain"][i]["links"].is_null());
    } else {
      EXPECT_EQ(j["chain"][i]["links"], true) << i;
      EXPECT_LT(j["chain"][i - 1]["entry"]["id"], j["chain"][i]["entry"]["id"]);
    }
  }
  EXPECT_EQ(get("/v1/envs/sandbox/audit/01a2205c-d11c-7327-b6d6-f43dd781f1e7", sandbox_)->status,
            404);
  EXPECT_EQ(get("/v1/envs/sandbox/audit/not-an-id", sandbox_)->status, 400);
  EXPECT_EQ(get("/v1/envs/sandbox/audit?after=zz", sandbox_)->status, 400);
  EXPECT_EQ(get("/v1/envs/sandbox/audit?limit=0", sandbox_)->status, 400);
}

TEST_F(HttpApi, AnAuditVerificationRunsInTheBackgroundAndFindsABreak) {
  auto none = get("/v1/envs/sandbox/audit:verify", sandbox_);
  ASSERT_EQ(none->status, 200);
  EXPECT_EQ(json::parse(none->body)["started"], false);
  post_new_records("b", 5);
  step();
  auto wait_done = [&] {
    for (int i = 0; i < 2000; ++i) {
      auto j = json::parse(get("/v1/envs/sandbox/audit:verify", read_only_)->body);
      if (j["running"] == false) return j;
      std::this_thread::yield();
    }
    return json();
  };
  auto started = post("/v1/envs/sandbox/audit:verify", "", read_only_);
  ASSERT_EQ(started->status, 202) << started->body;
  EXPECT_NE(json::parse(started->body)["started_by"].get<std::string>().find("(r)"),
            std::string::npos);
  json done = wait_done();
  ASSERT_TRUE(done.is_object());
  EXPECT_EQ(done["ok"], true) << done.dump();
  EXPECT_EQ(done["entries_checked"], audit_entries("sandbox"));
  EXPECT_EQ(done["progress"], 1.0);
  // Tamper with one entry's detail in the SQLite file: the next run names it.
  // The last entry: its writer slot has entries before it.
  auto page = (*app_->pipeline("sandbox"))->ingest_store().scan_audit(std::nullopt, 1000);
  const std::string bad = page->back().id.str();
  {
    auto db = sqlite::SqliteDb::open(dir_.file("sandbox.db"), Role::kMigrator, Durability::kFsync);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->exec("DROP TRIGGER audit_refuse_update").ok());
    auto r =
        (*db)->exec("UPDATE event_audit_log SET detail = '{\"x\":1}' WHERE id = '" + bad + "'");
    ASSERT_TRUE(r.ok()) << r.error().describe();
  }
  ASSERT_EQ(post("/v1/envs/sandbox/audit:verify", "", sandbox_)->status, 202);
  done = wait_done();
  EXPECT_EQ(done["ok"], false) << done.dump();
  EXPECT_EQ(done["first_bad_entry"], bad);
  // The chain around it shows the broken link.
  auto around = json::parse(get("/v1/envs/sandbox/audit/" + bad, sandbox_)->body);
  const size_t at = around["position"];
  ASSERT_GT(at, 0u) << around.dump();
  EXPECT_EQ(around["chain"][at]["links"], false) << around.dump();
  EXPECT_EQ(around["chain"][at - 1]["links"].is_null() || around["chain"][at - 1]["links"] == true,
            true);
}

TEST_F(HttpApi, APoisonMessageIsListedAndAnAdminDiscardsIt) {
  EnvPublisher raw(app_->broker(), app_->topology(), "sandbox", app_->config().environments);
  ASSERT_TRUE(
      raw.publish_record(TopicFamily::kRaw, {"x", "y"}, std::string("\xff\xfe not json")).ok());
  step();
  ASSERT_TRUE((*app_->pipeline("sandbox"))->step_watchers().ok());
  auto list = get("/v1/envs/sandbox/poison", read_only_);
  ASSERT_EQ(list->status, 200) << list->body;
  auto j = json::parse(list->body);
  ASSERT_EQ(j["poison"].size(), 1u) << j.dump();
  const std::string id = j["poison"][0]["message_id"];
  EXPECT_NE(j["poison"][0]["data"].get<std::string>().find("not json"), std::string::npos);
  EXPECT_FALSE(j["poison"][0]["reason"].get<std::string>().empty());
  const std::string discard = "/v1/envs/sandbox/poison/" + id + ":discard";
  EXPECT_EQ(post(discard, "", read_only_)->status, 403);
  EXPECT_EQ(post("/v1/envs/sandbox/poison/nope:discard", "", sandbox_)->status, 404);
  EXPECT_EQ(post(discard, "", sandbox_)->status, 202);
  // Held until its next delivery, then let go.
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/poison", sandbox_)->body)["poison"].size(), 1u);
  clock_.advance_micros(pipeline::DlqInspector::kRecheckUs);
  ASSERT_TRUE((*app_->pipeline("sandbox"))->step_watchers().ok());
  EXPECT_EQ(json::parse(get("/v1/envs/sandbox/poison", sandbox_)->body)["poison"].size(), 0u);
  auto inspect = app_->broker().stats("events.dlq.sandbox.inspect");
  EXPECT_EQ(*inspect->undelivered + *inspect->in_flight, 0u);
  auto acts = json::parse(get("/v1/envs/sandbox/admin-audit", sandbox_)->body);
  EXPECT_NE(acts.dump().find("dlq.discard_poison"), std::string::npos);
}

TEST(ServeConfig, AStoreWithoutEnvServesOneEnvironmentOnly) {
  TempDir dir;
  Config config = local_config(dir);
  config.store = "sqlite://" + dir.file("one.db");
  server::AppOptions o;
  o.config = config;
  o.start_stages = false;
  auto both = server::App::open(o);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.code(), Errc::kInvalidArgument);
  o.envs = {"sandbox"};
  EXPECT_TRUE(server::App::open(o).ok());
}

}  // namespace
}  // namespace backbone::testing
