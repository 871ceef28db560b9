// The NATS JetStream peer of bench/broker: a throwaway nats-server on a loopback port with a
// file-storage stream, driven with libnats the way its users drive it for throughput (async
// publish; pull consumer, fetch and ack).
//
// A server started here is stopped however the benchmark ends: by its destructor, by an atexit
// handler when the benchmark calls std::exit, and by the kernel (PR_SET_PDEATHSIG) when the
// benchmark is killed. It writes to its log file, never to the benchmark's terminal.
#pragma once

#include <fcntl.h>
#include <nats/nats.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>
#include <set>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace backbone::bench {

// The servers running now, stopped at exit.
struct RunningServers {
  std::mutex mu;
  std::set<pid_t> pids;
  static RunningServers& get() {
    static RunningServers* r = [] {
      auto* servers = new RunningServers;
      std::atexit([] { get().stop_all(); });
      return servers;
    }();
    return *r;
  }
  void stop_all() {
    std::lock_guard lk(mu);
    for (pid_t pid : pids) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    pids.clear();
  }
};

class NatsServer {
 public:
  // Starts `nats-server -js` on 127.0.0.1:port with its store in `dir`.
  NatsServer(int port, const std::string& dir) : port_(port) {
    const pid_t parent = ::getpid();
    RunningServers& running = RunningServers::get();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(0);  // the benchmark ended before prctl
      const int null = ::open("/dev/null", O_RDWR);
      for (int fd = 0; fd <= 2; ++fd) ::dup2(null, fd);
      const std::string p = std::to_string(port);
      ::execlp("nats-server", "nats-server", "-js", "-a", "127.0.0.1", "-p", p.c_str(), "-sd",
               dir.c_str(), "-l", (dir + "/server.log").c_str(), nullptr);
      ::_exit(127);
    }
    std::lock_guard lk(running.mu);
    running.pids.insert(pid_);
  }
  ~NatsServer() {
    if (pid_ > 0) {
      RunningServers& running = RunningServers::get();
      std::lock_guard lk(running.mu);
      if (running.pids.erase(pid_)) {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
      }
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

// js_PublishAsync that waits out the server's back-pressure: when MaxPending messages are
// unacknowledged and the stall wait passes, libnats answers NATS_TIMEOUT; the publish is then
// retried once the outstanding ones are acknowledged, instead of failing the run.
inline natsStatus publish_async(jsCtx* js, const char* subject, const void* data, int size) {
  for (int tries = 0; tries < 100; ++tries) {
    const natsStatus s = js_PublishAsync(js, subject, data, size, nullptr);
    if (s != NATS_TIMEOUT) return s;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10'000;
    const natsStatus drained = js_PublishAsyncComplete(js, &po);
    if (drained != NATS_OK && drained != NATS_TIMEOUT) return drained;
  }
  return NATS_TIMEOUT;
}

inline void nats_check(natsStatus s, const char* what) {
  if (s != NATS_OK) {
    std::fprintf(stderr, "%s: %s\n", what, natsStatus_GetText(s));
    std::exit(1);
  }
}

}  // namespace backbone::bench
