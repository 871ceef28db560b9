// The OpenAPI document (doc/openapi.json, served at GET /v1/openapi.json) against the server
// itself: every route the server registers is documented, and every documented operation
// reaches a route of the server (an answer that is not the router's own 404 or 405).
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "server/app.h"
#include "server/http_server.h"
#include "server/local_config.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

using nlohmann::json;

// The documented path with a sample value for each {parameter}.
std::string sample(const std::string& templ) {
  static const std::map<std::string, std::string> values = {
      {"env", "sandbox"},         {"id", "01a2205c-d11c-7327-b6d6-f43dd781f1e7"},
      {"record_type", "contact"}, {"record_id", "42"},
      {"token_id", "t1"},         {"subscription", "sync"}};
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

class OpenApi : public ::testing::Test {
 protected:
  void SetUp() override {
    server::AppOptions o;
    o.config = local_config(dir_);
    o.clock = &clock_;
    o.start_stages = false;
    auto app = server::App::open(o);
    ASSERT_TRUE(app.ok()) << app.error().describe();
    app_ = std::move(*app);
    token_ = *app_->create_token("sandbox", "t", {"publish", "read", "subscribe", "admin"});
    http_ = std::make_unique<server::HttpServer>(*app_);
    ASSERT_TRUE(http_->bind("127.0.0.1:0").ok());
    thread_ = std::thread([this] { http_->run(); });
    httplib::Client c("127.0.0.1", http_->port());
    auto r = c.Get("/v1/openapi.json");
    ASSERT_TRUE(r && r->status == 200);
    doc_ = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(doc_.is_object()) << "the document is not JSON";
  }
  void TearDown() override {
    if (http_) http_->stop();
    if (thread_.joinable()) thread_.join();
  }
  // Every documented operation: method and sample path.
  std::vector<std::pair<std::string, std::string>> operations() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [path, item] : doc_["paths"].items()) {
      for (const auto& [method, op] : item.items()) out.emplace_back(upper(method), sample(path));
    }
    return out;
  }

  ManualClock clock_;
  TempDir dir_;
  std::unique_ptr<server::App> app_;
  std::unique_ptr<server::HttpServer> http_;
  std::thread thread_;
  std::string token_;
  json doc_;
};

TEST_F(OpenApi, TheDocumentIsOpenApi31WithItsPaths) {
  EXPECT_EQ(doc_["openapi"], "3.1.0");
  EXPECT_GE(doc_["paths"].size(), 20u);
}

TEST_F(OpenApi, EveryRegisteredRouteIsDocumented) {
  const auto ops = operations();
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

TEST_F(OpenApi, EveryDocumentedOperationReachesARoute) {
  httplib::Client c("127.0.0.1", http_->port());
  c.set_read_timeout(10);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token_}};
  const auto ops = operations();
  ASSERT_FALSE(ops.empty());
  for (const auto& [method, path] : ops) {
    httplib::Result r =
        method == "GET" ? c.Get(path, auth) : c.Post(path, auth, "{}", "application/json");
    ASSERT_TRUE(r) << method << " " << path << ": no answer";
    const json body = json::parse(r->body, nullptr, false);
    const std::string message =
        body.is_object() && body.contains("error") ? body["error"].value("message", "") : "";
    EXPECT_NE(r->status, 405) << method << " " << path << ": " << r->body;
    EXPECT_EQ(message.rfind("no route for", 0), std::string::npos)
        << method << " " << path << " reaches no route";
  }
}

}  // namespace
}  // namespace backbone::testing
