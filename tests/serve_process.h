// `backbone serve` as a child process of a test, on loopback.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backbone/event_id.h"

namespace backbone::testing {

class ServeProcess {
 public:
  // `config`: a backbone.toml; `port`: the HTTP port; `extra`: more arguments of `serve`.
  ServeProcess(std::string config, int port, std::vector<std::string> extra = {})
      : config_(std::move(config)), port_(port), extra_(std::move(extra)) {}
  ~ServeProcess() { kill(9); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Starts it serving the sandbox environment (or the one set by serve_env; "" serves every
  // configured one), its standard output to /dev/null.
  void start();
  void serve_env(std::string env) { env_ = std::move(env); }
  // Listens on this host instead of 127.0.0.1 (the readiness check still asks 127.0.0.1).
  void listen_host(std::string host) { host_ = std::move(host); }
  // The server speaks TLS: the readiness check trusts this CA file.
  void tls_ca(std::string ca) { ca_ = std::move(ca); }
  // Its log (stderr) goes to `path`, at the level `flags` give ({"-v"} for debug); without this
  // it runs with -q, its warnings and errors on the test's stderr.
  void log_to(std::string path, std::vector<std::string> flags = {}) {
    log_path_ = std::move(path);
    log_flags_ = std::move(flags);
  }
  // Waits until /healthz answers (at most 20 s); false at once when the child exits.
  bool wait_ready();
  // Sends `sig` and waits for the exit; returns the wait status (that of an exit wait_ready saw,
  // or -1 when it never ran).
  int kill(int sig);
  // Sends `sig` without waiting (SIGSTOP, SIGCONT).
  void signal(int sig);

 private:
  std::string config_;
  int port_;
  std::vector<std::string> extra_;
  std::string env_ = "sandbox";
  std::string host_ = "127.0.0.1";
  std::string ca_;
  std::string log_path_;
  std::vector<std::string> log_flags_;
  pid_t pid_ = -1;
  std::optional<int> exited_;
};

// Writes `folder`/backbone.toml for a `serve` whose stores, broker and tokens live in `folder`,
// with the Pub/Sub front on `pubsub_listen`; returns its path.
std::string write_serve_config(const std::string& folder, const std::string& pubsub_listen);
// The same with this store and broker URL (the tokens in `folder`).
std::string write_serve_config(const std::string& folder, const std::string& store,
                               const std::string& broker, const std::string& pubsub_listen);

// Runs the `backbone` program with `args` (a shell command line); returns its exit status and
// its standard output.
std::pair<int, std::string> run_cli(const std::string& args);

// POSTs a batch body (stress::ingest_body) to the sandbox's events on `port` with `token`; the
// ids answered, or nullopt when it was not answered with 201.
std::optional<std::vector<EventId>> post_events(int port, const std::string& token,
                                                const std::string& body);

// The sum of a counter's series in the /metrics answer of the serve on `port` (0 when it has
// none, -1 when it does not answer).
double counter_sum(int port, const std::string& name);

// Waits until something accepts TCP connections on 127.0.0.1:port (at most `ms`).
bool wait_for_port(int port, int ms);

// Runs of several `serve` processes take the plain build only: under the sanitizers each
// process runs the one-process runs' code, which they check, at several times the cost.
#ifdef BACKBONE_SANITIZED
#define SKIP_UNDER_SANITIZERS()                                                               \
  GTEST_SKIP() << "several processes run in the plain build only: under the sanitizers each " \
                  "runs the one-process runs' code, which they check"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

}  // namespace backbone::testing
