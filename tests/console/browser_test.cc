// The operators' console in a real browser: tests/console/console.test.cjs, run by `node --test`
// with playwright-core driving Debian's chromium (headless, never a downloaded browser), against
// a `serve` child that serves both environments. The scenario and its checks are in the script;
// the screenshots of every page go to the build tree (console-screenshots/).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backbone/broker.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

std::string make_token(const std::string& config, const std::string& env, const std::string& roles,
                       const std::string& name) {
  auto [status, out] = run_cli("--config '" + config + "' --env " + env +
                               " --json token create --roles " + roles + " --name " + name);
  EXPECT_EQ(status, 0) << out;
  auto j = nlohmann::json::parse(out, nullptr, false);
  return j.is_object() && j.contains("token") ? j["token"].get<std::string>() : "";
}

TEST(ConsoleBrowser, OperatorsSeeRepairAndAuditThroughTheConsole) {
#ifdef BACKBONE_SANITIZED
  GTEST_SKIP() << "the browser scenario runs in the plain tree only (doc/console.md): it drives "
                  "a `serve` child, and the routes it calls run under the sanitizers in HttpApi.*";
#endif
  if (!std::filesystem::exists("/usr/bin/chromium")) {
    if (test_servers_required()) FAIL() << "/usr/bin/chromium is missing (scripts/install-deps.sh)";
    GTEST_SKIP() << "/usr/bin/chromium is not installed";
  }
  TempDir dir;
  const int port = free_loopback_port();
  const std::string config =
      write_serve_config(dir.file(""), "127.0.0.1:" + std::to_string(free_loopback_port()));
  const std::string admin = make_token(config, "sandbox", "admin", "console-admin");
  const std::string reader = make_token(config, "sandbox", "read", "console-reader");
  const std::string production = make_token(config, "production", "admin", "prod-admin");
  ASSERT_FALSE(admin.empty() || reader.empty() || production.empty());
  // A poison message on sandbox's raw topic (not an event: as if published straight to the
  // broker), for the DLQ page's poison list.
  {
    auto [provisioned, out] = run_cli("--config '" + config + "' --env sandbox provision");
    ASSERT_EQ(provisioned, 0) << out;
    BrokerOptions bo;
    bo.url = "embedded://" + dir.file("broker");
    auto broker = Broker::open(bo);
    ASSERT_TRUE(broker.ok()) << broker.error().describe();
    const OutgoingMessage poison{"this is not an event", {{"from", "console-test"}}, ""};
    ASSERT_TRUE((*broker)->publish("events.raw.sandbox", std::span(&poison, 1)).ok());
  }
  ServeProcess serve(config, port);
  serve.serve_env("");  // both environments
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  const std::string shots = BACKBONE_SCREENSHOT_DIR;
  std::filesystem::create_directories(shots);
  const std::string cmd =
      std::string("cd '") + BACKBONE_SOURCE_DIR + "/tests/console' && env NODE_PATH='" +
      BACKBONE_CONSOLE_NODE_MODULES + "' BACKBONE_URL=http://127.0.0.1:" + std::to_string(port) +
      " SANDBOX_ADMIN=" + admin + " SANDBOX_READER=" + reader + " PRODUCTION_ADMIN=" + production +
      " SANDBOX_DB='" + dir.file("sandbox.db") + "' SCREENSHOT_DIR='" + shots +
      "' node --test --test-reporter=spec console.test.cjs 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  std::printf("%s\n", out.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the browser scenario failed";
  EXPECT_NE(out.find("fail 0\n"), std::string::npos);
  EXPECT_NE(out.find("skipped 0\n"), std::string::npos);
  // A screenshot of every page.
  for (const char* page :
       {"sign-in", "overview", "record", "record-diff", "event", "dlq", "dlq-dry-run", "dlq-entry",
        "audit", "audit-chain", "tokens", "reader", "production", "dlq-1000", "overview-busy",
        "audit-broken", "dlq-poison"}) {
    const auto f = std::filesystem::path(shots) / (std::string(page) + ".png");
    EXPECT_TRUE(std::filesystem::exists(f) && std::filesystem::file_size(f) > 1000)
        << f << " was not written";
  }
  EXPECT_EQ(serve.kill(SIGTERM) & 0x7f, 0);
}

}  // namespace
}  // namespace backbone::testing
