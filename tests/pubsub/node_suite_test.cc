// Google's official Node client against backbone's Pub/Sub front, and against Google's
// emulator: tests/pubsub/node/pubsub.test.cjs, run by `node --test` with the client that the
// build installed (scripts/fetch-npm.sh google-pubsub).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "auth/tokens.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

struct Ran {
  int status = -1;
  std::string out;
};

// Runs the Node suite against host:port with `env` (more "NAME=value" words for env(1)).
Ran run_suite(int port, const std::string& env) {
  const std::string cmd = std::string("cd '") + BACKBONE_SOURCE_DIR +
                          "/tests/pubsub/node' && env NODE_PATH='" + BACKBONE_NODE_MODULES +
                          "' PUBSUB_EMULATOR_HOST=127.0.0.1:" + std::to_string(port) + " " + env +
                          " node --test --test-reporter=spec pubsub.test.cjs 2>&1";
  Ran r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(PubsubNode, OfficialClientAgainstBackbone) {
  TempDir dir;
  const int http_port = free_loopback_port();
  const int pubsub_port = free_loopback_port();
  const std::string config =
      write_serve_config(dir.file(""), "127.0.0.1:" + std::to_string(pubsub_port));
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  ASSERT_TRUE(tokens.ok());
  const std::string sandbox = *tokens->create("node-sandbox", "sandbox", {"admin"});
  const std::string reader = *tokens->create("node-reader", "sandbox", {"read"});
  // A token of an environment this serve does not serve, in that environment's store (the
  // serve reads it, and refuses it there with PERMISSION_DENIED).
  auto [made, out] = run_cli("--config '" + config +
                             "' --env production --json token create --roles admin --name "
                             "node-production");
  ASSERT_EQ(made, 0) << out;
  const std::string production = nlohmann::json::parse(out)["token"];
  // Both environments' topologies exist: the suite checks that production's are refused.
  ServeProcess serve(config, http_port, {"--pubsub-anonymous", "sandbox"});
  {
    // `serve --env sandbox` provisions sandbox only; provision production through the CLI.
    const std::string cmd = std::string(BACKBONE_CLI_PATH) + " --config '" + config +
                            "' --env production provision > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  serve.start();
  ASSERT_TRUE(serve.wait_ready());
  ASSERT_TRUE(wait_for_port(pubsub_port, 10'000));
  const Ran r = run_suite(pubsub_port,
                          "PUBSUB_TARGET=backbone PUBSUB_PROJECT_ID=backbone-local "
                          "BACKBONE_PUBSUB_TOKEN=" +
                              sandbox + " BACKBONE_PUBSUB_OTHER_TOKEN=" + production +
                              " BACKBONE_PUBSUB_READ_TOKEN=" + reader);
  std::printf("%s\n", r.out.c_str());
  EXPECT_EQ(r.status, 0) << "the Node suite failed against backbone";
  EXPECT_NE(r.out.find("fail 0\n"), std::string::npos);
  EXPECT_NE(r.out.find("skipped 0\n"), std::string::npos);  // every case ran against backbone
  EXPECT_EQ(serve.kill(SIGTERM) & 0x7f, 0);
}

// The peer run: the same suite against Google's emulator, so that what it expects of a Pub/Sub
// server is checked against Google's own. It runs none of backbone's code, so the sanitizer
// tree leaves it to the plain one.
TEST(PubsubNode, OfficialClientAgainstGooglesEmulator) {
#ifdef BACKBONE_SANITIZED
  GTEST_SKIP() << "runs none of backbone's code (Google's client against Google's emulator): "
                  "the plain build runs it";
#endif
  if (!google_emulator_installed()) {
    GTEST_SKIP() << "Google's Pub/Sub emulator is not installed (" << kGoogleEmulator
                 << "; package google-cloud-cli-pubsub-emulator): the peer run is skipped";
  }
  const int port = google_emulator_port();
  ASSERT_GT(port, 0) << "the emulator did not start";
  const Ran r = run_suite(port, "PUBSUB_TARGET=emulator PUBSUB_PROJECT_ID=backbone-local");
  std::printf("%s\n", r.out.c_str());
  EXPECT_EQ(r.status, 0) << "the Node suite failed against the emulator in an unlisted way";
}

}  // namespace
}  // namespace backbone::testing
