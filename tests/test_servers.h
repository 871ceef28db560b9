// The throwaway servers that `make test` starts (scripts/with-test-servers.sh) and how a test
// finds them.
#pragma once

#include <cstdint>
#include <string>

namespace backbone::testing {

// The URL of the test server for `kind` ("postgresql", "mysql", "nats"), or "" when none was
// started for the tests.
std::string test_server_url(const std::string& kind);
// Whether the server tests must run (set by `make test`): then a missing server is a failure.
bool test_servers_required();

// In a test's SetUp: skips the test when no test server of `kind` was started, or fails it
// when `make test` said that the servers must be there.
#define BACKBONE_REQUIRE_TEST_SERVER(kind)                                      \
  if (::backbone::testing::test_server_url(kind).empty()) {                     \
    ASSERT_FALSE(::backbone::testing::test_servers_required())                  \
        << "no " << (kind) << " server for the tests";                          \
    GTEST_SKIP() << "no " << (kind) << " test server: run through `make test`"; \
  }

// Google's Pub/Sub emulator (package google-cloud-cli-pubsub-emulator), as the machine image
// installs it.
inline constexpr const char* kGoogleEmulator =
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";
// Whether it is installed.
bool google_emulator_installed();
// The port of Google's emulator on loopback, started once for the test process by the first
// caller and killed at exit; 0 when it is not installed or did not start within 60 s. Give each
// test a project of its own: the emulator keeps projects apart.
int google_emulator_port();

// A loopback TCP port that nothing listens on now.
uint16_t free_loopback_port();
// Runs scripts/<script> with `args` (a shell command line); returns its standard output
// without the trailing newlines, and fails the test if it exits non-zero.
std::string run_test_script(const std::string& script, const std::string& args);

}  // namespace backbone::testing
