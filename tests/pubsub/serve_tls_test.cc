// `backbone serve` with TLS on both listeners (issue 19), against a throwaway CA made with
// openssl: the HTTP API and the Pub/Sub front answer a client that trusts the CA (the front:
// Google's official Node client, with a token) and refuse one that trusts another; SIGHUP
// makes the HTTP API take new files, and the front takes them by itself. Without TLS, serve
// refuses to listen on an address that is not loopback unless --insecure-listen.
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "auth/tokens.h"
#include "http/test_ca.h"
#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

// The HTTP API's /healthz over TLS trusting `ca`: its status, or -1 with no answer.
int https_health(int port, const std::string& ca) {
  httplib::SSLClient c("127.0.0.1", port);
  c.set_ca_cert_path(ca.c_str());
  c.enable_server_certificate_verification(true);
  c.set_connection_timeout(5);
  auto r = c.Get("/healthz");
  return r ? r->status : -1;
}

// tests/pubsub/node/tls_client.cjs against the front; its JSON answer.
nlohmann::json node_tls(int port, const std::string& ca, const std::string& token,
                        const std::string& expect, int retry_ms = 0) {
  const std::string cmd =
      std::string("cd '") + BACKBONE_SOURCE_DIR + "/tests/pubsub/node' && env NODE_PATH='" +
      BACKBONE_NODE_MODULES + "' PUBSUB_HOST=127.0.0.1:" + std::to_string(port) +
      " PUBSUB_PROJECT_ID=backbone-local BACKBONE_PUBSUB_TOKEN=" + token + " TLS_CA='" + ca +
      "' EXPECT=" + expect + " RETRY_MS=" + std::to_string(retry_ms) + " node tls_client.cjs 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {{"ok", false}, {"error", "cannot run node"}};
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  const size_t line = out.rfind('{');
  auto j = nlohmann::json::parse(line == std::string::npos ? "" : out.substr(line), nullptr, false);
  if (j.is_discarded()) return {{"ok", false}, {"error", "no JSON from node: " + out}};
  return j;
}

TEST(ServeTls, BothListenersServeTlsToTheirCaOnlyAndTakeNewFiles) {
  TempDir dir;
  const RenewalCerts c = make_renewal_certs(dir.path());
  ASSERT_TRUE(c.made()) << "openssl could not make the test certificates";
  const std::string &cert = c.live.cert, &key = c.live.key;
  const CertFiles &ca1 = c.ca1, &ca2 = c.ca2;
  const int http_port = free_loopback_port(), pubsub_port = free_loopback_port();
  const std::string config =
      write_serve_config(dir.path(), "127.0.0.1:" + std::to_string(pubsub_port));
  std::ofstream(config, std::ios::app)
      << "[tls]\ncert_file = \"" << cert << "\"\nkey_file = \"" << key << "\"\n";
  auto tokens = auth::TokenFile::open(dir.file("tokens.json"));
  ASSERT_TRUE(tokens.ok());
  const std::string token = *tokens->create("tls", "sandbox", {"admin"});

  ServeProcess serve(config, http_port);
  serve.tls_ca(ca1.cert);
  serve.start();
  ASSERT_TRUE(serve.wait_ready()) << "no answer over TLS";
  ASSERT_TRUE(wait_for_port(pubsub_port, 10'000));

  // HTTP: the CA's clients only, and the API works over it with a token.
  EXPECT_EQ(https_health(http_port, ca1.cert), 200);
  EXPECT_EQ(https_health(http_port, ca2.cert), -1);
  httplib::Client plain("127.0.0.1", http_port);
  plain.set_connection_timeout(2);
  plain.set_read_timeout(2);
  EXPECT_FALSE(plain.Get("/healthz")) << "plain HTTP was answered on the TLS port";
  // The front: Google's Node client with the token, over TLS.
  auto ok = node_tls(pubsub_port, ca1.cert, token, "ok");
  EXPECT_EQ(ok["ok"], true) << ok.dump();
  auto refused = node_tls(pubsub_port, ca2.cert, token, "refused");
  EXPECT_EQ(refused["ok"], false) << "a client trusting another CA connected to the front";

  // New files: SIGHUP for the HTTP API; the front watches its files.
  c.put(c.second);
  EXPECT_EQ(https_health(http_port, ca2.cert), -1) << "taken before SIGHUP";
  serve.signal(SIGHUP);
  int status = -1;
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = https_health(http_port, ca2.cert);
    if (status != 200) ::poll(nullptr, 0, 50);
  }
  EXPECT_EQ(status, 200) << "the HTTP API did not take the new files after SIGHUP";
  EXPECT_EQ(https_health(http_port, ca1.cert), -1);
  auto renewed = node_tls(pubsub_port, ca2.cert, token, "ok", 10'000);
  EXPECT_EQ(renewed["ok"], true) << renewed.dump();
  EXPECT_EQ(serve.kill(SIGTERM) & 0x7f, 0);
}

TEST(ServeTls, PlaintextOffLoopbackIsRefusedUnlessInsecureListen) {
  TempDir dir;
  const int http_port = free_loopback_port(), pubsub_port = free_loopback_port();
  const std::string config = write_serve_config(dir.path(), "off");
  auto [code, out] = run_cli("--config '" + config + "' --env sandbox serve --listen 0.0.0.0:" +
                             std::to_string(http_port) + " 2>&1");
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("not a loopback address"), std::string::npos) << out;
  EXPECT_NE(out.find("--insecure-listen"), std::string::npos) << out;
  auto [code2, out2] = run_cli("--config '" + config + "' --env sandbox serve --listen 127.0.0.1:" +
                               std::to_string(http_port) +
                               " --pubsub-listen 0.0.0.0:" + std::to_string(pubsub_port) + " 2>&1");
  EXPECT_EQ(code2, 2) << out2;
  EXPECT_NE(out2.find("--pubsub-listen"), std::string::npos) << out2;
  // Told to, it serves on every interface. A port found free on loopback may be taken meanwhile
  // by another test's server, on any address ("Address already in use" on 0.0.0.0): a few fresh
  // ports are tried.
  bool served = false;
  for (int attempt = 0; attempt < 3 && !served; ++attempt) {
    ServeProcess serve(config, attempt ? free_loopback_port() : http_port, {"--insecure-listen"});
    serve.listen_host("0.0.0.0");
    serve.start();
    served = serve.wait_ready();
    EXPECT_EQ(serve.kill(SIGTERM) & 0x7f, 0);
  }
  EXPECT_TRUE(served);
}

}  // namespace
}  // namespace backbone::testing
