// Google's official Node client against backbone's Pub/Sub front, and against Google's
// emulator: tests/pubsub/node/pubsub.test.cjs, run by `node --test` with the client that the
// build installed (scripts/fetch-google-pubsub.sh).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "auth/tokens.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

constexpr const char* kEmulator =
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";

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
  auto tokens = auth::TokenStore::open(dir.file("tokens.json"));
  ASSERT_TRUE(tokens.ok());
  const std::string sandbox = *tokens->create("node-sandbox", "sandbox", {"admin"});
  const std::string production = *tokens->create("node-production", "production", {"admin"});
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
                              sandbox + " BACKBONE_PUBSUB_OTHER_TOKEN=" + production);
  std::printf("%s\n", r.out.c_str());
  EXPECT_EQ(r.status, 0) << "the Node suite failed against backbone";
  EXPECT_NE(r.out.find("fail 0\n"), std::string::npos);
  EXPECT_NE(r.out.find("skipped 0\n"), std::string::npos);  // every case ran against backbone
  EXPECT_EQ(serve.kill(SIGTERM) & 0x7f, 0);
}

TEST(PubsubNode, OfficialClientAgainstGooglesEmulator) {
  if (!std::filesystem::exists(kEmulator)) {
    GTEST_SKIP() << "Google's Pub/Sub emulator is not installed (" << kEmulator
                 << "; package google-cloud-cli-pubsub-emulator): the peer run is skipped";
  }
  TempDir dir;
  const int port = free_loopback_port();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    if (!::freopen((dir.file("emulator.log")).c_str(), "w", stdout)) ::_exit(126);
    ::dup2(::fileno(stdout), 2);
    const std::string port_flag = "--port=" + std::to_string(port);
    ::execl(kEmulator, kEmulator, "--host=127.0.0.1", port_flag.c_str(), nullptr);
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  const bool up = wait_for_port(port, 60'000);
  Ran r;
  if (up) r = run_suite(port, "PUBSUB_TARGET=emulator PUBSUB_PROJECT_ID=backbone-local");
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_TRUE(up) << "the emulator did not start";
  std::printf("%s\n", r.out.c_str());
  EXPECT_EQ(r.status, 0) << "the Node suite failed against the emulator in an unlisted way";
}

}  // namespace
}  // namespace backbone::testing
