// `serve`'s log as an operator reads it: on stderr, one JSON object per line with
// --log-format json; an access line per request with its status and duration; with -v, each
// merge decision; a clean stop at info, not as a warning; nothing on stdout but the banner.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "auth/tokens.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

using nlohmann::json;

TEST(ServeLog, JsonLinesWithAccessLinesDecisionsAndACleanStopAtInfo) {
  TempDir dir;
  const int port = 19500 + static_cast<int>(::getpid() % 200);
  const std::string config = write_serve_config(dir.file(""), "127.0.0.1:0");
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  const std::string token = *tokens->create("log", "sandbox", {"publish", "read"});
  ServeProcess serve(config, port);
  serve.log_to(dir.file("serve.log"), {"-v", "--log-format", "json"});
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  httplib::Client c("127.0.0.1", port);
  const httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  auto posted = c.Post("/v1/envs/sandbox/events", auth,
                       R"({"record_type":"contact","record_id":"7","source":"crm",)"
                       R"("base_version":0,"changes":{"name":"Ada"}})",
                       "application/json");
  ASSERT_TRUE(posted && posted->status == 201);
  auto merged = c.Get("/v1/envs/sandbox/records/contact/7?min_version=1&wait_ms=20000", auth);
  ASSERT_TRUE(merged && merged->status == 200);
  ASSERT_EQ(c.Get("/v1/envs/sandbox/nowhere", auth)->status, 404);
  const int status = serve.kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  std::ifstream in(dir.file("serve.log"));
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON line: " << line;
    ASSERT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    lines.push_back(std::move(j));
  }
  auto find = [&](const std::function<bool(const json&)>& want) -> const json* {
    for (const json& j : lines) {
      if (want(j)) return &j;
    }
    return nullptr;
  };
  const json* post = find([](const json& j) {
    return j["msg"] == "http.request" && j["method"] == "POST" &&
           j["path"] == "/v1/envs/sandbox/events";
  });
  ASSERT_NE(post, nullptr) << "no access line for the POST";
  EXPECT_EQ((*post)["status"], 201);
  EXPECT_TRUE((*post)["ms"].is_number());
  EXPECT_EQ((*post)["remote"], "127.0.0.1");
  EXPECT_NE(find([](const json& j) { return j["msg"] == "http.request" && j["status"] == 404; }),
            nullptr);
  const json* decided = find([](const json& j) { return j["msg"] == "merge.decided"; });
  ASSERT_NE(decided, nullptr) << "-v logs each merge decision";
  EXPECT_EQ((*decided)["level"], "debug");
  EXPECT_EQ((*decided)["record"], "contact/7");
  EXPECT_EQ((*decided)["kind"], "fast_forward");
  EXPECT_EQ((*decided)["version"], 1);
  const json* stop = find([](const json& j) { return j["msg"] == "stop"; });
  ASSERT_NE(stop, nullptr);
  EXPECT_EQ((*stop)["level"], "info");
  EXPECT_EQ(find([](const json& j) { return j["level"] == "warn" || j["level"] == "error"; }),
            nullptr);
}

}  // namespace
}  // namespace backbone::testing
