// The NATS JetStream peer of bench/broker: a throwaway nats-server on a loopback port with a
// file-storage stream, driven with libnats the way its users drive it for throughput (async
// publish; pull consumer, fetch and ack).
#pragma once

#include <nats/nats.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace backbone::bench {

class NatsServer {
 public:
  // Starts `nats-server -js` on 127.0.0.1:port with its store in `dir`.
  NatsServer(int port, const std::string& dir) : port_(port) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string p = std::to_string(port);
      ::execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", p.c_str(), "-sd",
               dir.c_str(), "-l", (dir + "/server.log").c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~NatsServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  // Connects, retrying while the server starts.
  natsConnection* connect() const {
    for (int i = 0; i < 100; ++i) {
      natsConnection* nc = nullptr;
      if (natsConnection_ConnectTo(&nc, url().c_str()) == NATS_OK) return nc;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::fprintf(stderr, "nats-server did not start on %s\n", url().c_str());
    std::exit(1);
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

inline void nats_check(natsStatus s, const char* what) {
  if (s != NATS_OK) {
    std::fprintf(stderr, "%s: %s\n", what, natsStatus_GetText(s));
    std::exit(1);
  }
}

}  // namespace backbone::bench
