// The HTTP API with 1,000 idle or slow clients open (issue 19): a slowloris set of sockets from
// four loopback addresses, half of them silent and half sending a header byte a second, each
// reconnected when the server cuts it at its header deadline, as an attacker would. Meanwhile
// /healthz must answer with p99 under 50 ms, and batch ingest keep at least 0.9 of its
// throughput without them (median of alternating rounds, the machine being shared).
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "http/raw_connection.h"
#include "server/app.h"
#include "server/http_server.h"
#include "server/local_config.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr size_t kAttackers = 1000;

// Keeps kAttackers connections open against `port`: even ones silent, odd ones sending a byte
// of an endless header each second; a connection the server closes is opened again.
class Slowloris {
 public:
  explicit Slowloris(int port) : port_(port), conns_(kAttackers) {
    thread_ = std::thread([this] { run(); });
  }
  ~Slowloris() {
    stop_ = true;
    thread_.join();
  }
  size_t open() const { return open_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }

 private:
  bool open_one(size_t i) {
    static const char* kSources[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
    if (!conns_[i].connect(port_, kSources[i % 4])) return false;
    if (i % 2 == 1) return conns_[i].send("GET /healthz HTTP/1.1\r\nX-Slow: ");
    return true;
  }
  void run() {
    for (size_t i = 0; i < kAttackers && !stop_; ++i) {
      if (open_one(i)) ++open_;
    }
    std::vector<pollfd> fds(kAttackers);
    size_t tick = 0;
    while (!stop_) {
      for (size_t i = 0; i < kAttackers; ++i) fds[i] = {conns_[i].fd(), POLLIN, 0};
      // A tenth of the slow ones send a byte every 100 ms: a byte a second each.
      ::poll(fds.data(), fds.size(), 100);
      size_t now_open = 0;
      for (size_t i = 0; i < kAttackers; ++i) {
        bool closed = conns_[i].fd() < 0;
        if (!closed && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
          char buf[4096];
          closed = ::recv(conns_[i].fd(), buf, sizeof buf, MSG_DONTWAIT) <= 0;
        }
        if (!closed && i % 2 == 1 && i % 10 == tick % 10) closed = !conns_[i].send("a");
        if (closed) {
          ++reconnects_;
          closed = !open_one(i);
        }
        if (!closed) ++now_open;
      }
      open_ = now_open;
      ++tick;
    }
  }

  const int port_;
  std::vector<RawConnection> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> open_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::thread thread_;
};

class SlowClients : public ::testing::Test {
 protected:
  void SetUp() override {
    Config config = local_config(dir_);
    config.environments = {"sandbox"};
    // Short enough that the server cuts the slow ones during the test and the attacker opens
    // them again, as a real one would.
    config.http.header_timeout_ms = 1500;
    server::AppOptions o;
    o.config = config;
    o.start_stages = false;
    auto app = server::App::open(o);
    ASSERT_TRUE(app.ok()) << app.error().describe();
    app_ = std::move(*app);
    token_ = *app_->create_token("sandbox", "t", {"publish"});
    http_ = std::make_unique<server::HttpServer>(*app_);
    ASSERT_TRUE(http_->bind("127.0.0.1:0").ok());
    thread_ = std::thread([this] { http_->run(); });
  }
  void TearDown() override {
    http_->stop();
    thread_.join();
  }

  // Events per second of batch ingest: 4 clients, each posting `batches` batches of 100.
  double ingest_rate(int batches) {
    const auto t0 = SteadyClock::now();
    std::vector<std::thread> clients;
    std::atomic<int> failed{0};
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&] {
        httplib::Client client("127.0.0.1", http_->port());
        client.set_read_timeout(30);
        const httplib::Headers h = {{"Authorization", "Bearer " + token_}};
        for (int b = 0; b < batches; ++b) {
          std::string body = "[";
          for (int i = 0; i < 100; ++i) {
            body += std::string(i ? "," : "") + R"({"record_type":"contact","record_id":"r)" +
                    std::to_string(next_id_++) +
                    R"(","source":"crm","base_version":0,"changes":{"name":"x"}})";
          }
          body += "]";
          auto r = client.Post("/v1/envs/sandbox/events", h, body, "application/json");
          if (!r || r->status != 201) ++failed;
        }
      });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(failed.load(), 0);
    const double s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    return 4.0 * batches * 100 / s;
  }

  // The p99 of `n` /healthz requests in a row on one kept-alive connection, in ms.
  double healthz_p99_ms(int n) {
    httplib::Client client("127.0.0.1", http_->port());
    client.set_read_timeout(5);
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      const auto t0 = SteadyClock::now();
      auto r = client.Get("/healthz");
      ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
      if (!r || r->status != 200) ms.back() = 1e9;  // a failure counts as the worst
    }
    std::sort(ms.begin(), ms.end());
    return ms[static_cast<size_t>(0.99 * (ms.size() - 1))];
  }

  TempDir dir_;
  std::unique_ptr<server::App> app_;
  std::unique_ptr<server::HttpServer> http_;
  std::thread thread_;
  std::string token_;
  std::atomic<uint64_t> next_id_{0};
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST_F(SlowClients, AThousandSlowConnectionsLeaveHealthAndIngestServed) {
  ingest_rate(2);  // warm up the stores
  std::vector<double> without, with, p99s;
  size_t least_open = kAttackers;
  uint64_t reconnects = 0;
  for (int round = 0; round < 5; ++round) {
    without.push_back(ingest_rate(12));
    Slowloris attack(http_->port());
    // Until every connection is open (the server has them all).
    for (int i = 0; i < 500 && (attack.open() < kAttackers || http_->counters().open < kAttackers);
         ++i) {
      ::poll(nullptr, 0, 10);
    }
    ASSERT_GE(http_->counters().open, kAttackers) << "the server never held all of them";
    // And until the server has cut some at their deadline: the measurement runs amid the churn.
    const uint64_t cut = http_->counters().timed_out;
    for (int i = 0; i < 500 && http_->counters().timed_out == cut; ++i) ::poll(nullptr, 0, 10);
    p99s.push_back(healthz_p99_ms(200));
    with.push_back(ingest_rate(12));
    least_open = std::min(least_open, attack.open());
    reconnects += attack.reconnects();
  }
  const double ratio = median(with) / median(without);
  std::printf(
      "ingest without %0.f ev/s, with %zu slow connections %0.f ev/s (ratio %.2f, median of "
      "5); /healthz p99 %.2f ms (worst round of 5: %.2f ms); attackers reconnected %llu "
      "times\n",
      median(without), kAttackers, median(with), ratio, median(p99s),
      *std::max_element(p99s.begin(), p99s.end()), static_cast<unsigned long long>(reconnects));
  EXPECT_GE(least_open, kAttackers * 95 / 100);
  EXPECT_GT(reconnects, 0u) << "the server never cut a slow connection at its deadline";
  // Every /healthz answered (a failure counts as 1e9 ms) and every batch stored (ingest_rate).
  EXPECT_LT(*std::max_element(p99s.begin(), p99s.end()), 1e9);
#ifndef BACKBONE_SANITIZED
  // The bounds are measurements: of the plain build. Under ASan and UBSan at -O0 the same run
  // (the whole churn of 1,000 connections, for the sanitizers' sake) is several times slower
  // everywhere (p99 90 ms, ratio 0.6 in the fresh clone's run), which says nothing of the
  // server.
  EXPECT_LT(median(p99s), 50.0);
  EXPECT_GE(ratio, 0.9);
#endif
}

}  // namespace
}  // namespace backbone::testing
