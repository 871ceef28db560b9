// `backbone serve` as a child process of a test, on loopback.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace backbone::testing {

class ServeProcess {
 public:
  // `config`: a backbone.toml; `port`: the HTTP port; `extra`: more arguments of `serve`.
  ServeProcess(std::string config, int port, std::vector<std::string> extra = {})
      : config_(std::move(config)), port_(port), extra_(std::move(extra)) {}
  ~ServeProcess() { kill(9); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Starts it serving the sandbox environment, its standard output to /dev/null.
  void start();
  // Waits until /healthz answers (at most 20 s).
  bool wait_ready();
  // Sends `sig` and waits for the exit; returns the wait status (-1 when not running).
  int kill(int sig);

 private:
  std::string config_;
  int port_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
};

// Writes `folder`/backbone.toml for a `serve` whose stores, broker and tokens live in `folder`,
// with the Pub/Sub front on `pubsub_listen`; returns its path.
std::string write_serve_config(const std::string& folder, const std::string& pubsub_listen);

// Waits until something accepts TCP connections on 127.0.0.1:port (at most `ms`).
bool wait_for_port(int port, int ms);

}  // namespace backbone::testing
