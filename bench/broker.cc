// bench/broker: the embedded broker, and the NATS backend (the Broker port on JetStream), each
// against plain libnats on JetStream doing the same work, in one run.
//
// For each message size: N messages over 1000 ordering keys are
//  1. published (ours: 2 threads publishing batches of 500; JetStream: async publish from one
//     thread with up to 4096 in flight, then wait for every ack), then
//  2. consumed and acked (ours: an ordered subscription, pull up to 1000 and ack the batch;
//     JetStream: a durable pull consumer, fetch 1000, ack each).
// Then publish-to-delivery latency is measured at a steady rate of about a third of our peak
// (a publisher sending batches of 10 every millisecond and a consumer waiting in pull/fetch).
// Durability tiers differ, and the table says how: the embedded broker acknowledges a publish
// after fsync; JetStream's file store, and so the NATS backend, before fsync (it syncs every 2
// minutes by default). The NATS backend's floor is the plain libnats row: the same server
// build, a fresh server each, the same messages.
//
// Last, memory: the peak RSS of a process that holds a backlog of 1M unacked 256 B messages.
//
//   bench_broker [--messages N] [--rounds R] [--backlog N] [--dir PATH]
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backbone/broker.h"
#include "bench/bench_util.h"
#include "bench/nats_peer.h"

namespace backbone::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kKeys = 1000;

struct Options {
  int messages = 100'000;
  int rounds = 3;
  int backlog = 1'000'000;
  std::string dir = "var/bench/broker";
};

struct Figures {
  double publish = 0, consume = 0, p50_us = 0, p99_us = 0;
};

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string payload(size_t size, int64_t stamp) {
  std::string s(size, 'x');
  const std::string t = std::to_string(stamp);
  std::memcpy(s.data(), t.data(), std::min(t.size(), size));
  s[std::min(t.size(), size - 1)] = ' ';
  return s;
}

std::pair<double, double> percentiles(std::vector<double> v) {
  if (v.empty()) return {0, 0};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

// ---- ours ----------------------------------------------------------------------------------

std::unique_ptr<Broker> open_ours(const std::string& url) {
  BrokerOptions o;
  o.url = url;
  auto b = Broker::open(o);
  if (!b.ok()) {
    std::fprintf(stderr, "%s\n", b.error().describe().c_str());
    std::exit(1);
  }
  if (!(*b)->create_topic({"bench", {}}).ok()) std::exit(1);
  SubscriptionConfig c;
  c.name = "bench.work";
  c.topic = "bench";
  c.ordered = true;
  c.ack_deadline_us = 60 * kSecond;
  if (!(*b)->create_subscription(c).ok()) std::exit(1);
  return std::move(*b);
}

std::string embedded_url(const std::string& dir) {
  std::filesystem::remove_all(dir);
  return "embedded://" + dir;
}

// The Broker port at `url`.
Figures run_ours(const Options& o, size_t size, const std::string& url) {
  Figures f;
  auto b = open_ours(url);
  constexpr int kThreads = 2, kBatch = 500;
  const int per_thread = o.messages / kThreads;
  auto t0 = Clock::now();
  std::vector<std::thread> pubs;
  for (int t = 0; t < kThreads; ++t) {
    pubs.emplace_back([&, t] {
      std::vector<OutgoingMessage> batch;
      for (int i = 0; i < per_thread; ++i) {
        const int n = t * per_thread + i;
        batch.push_back({payload(size, 0), {}, "k" + std::to_string(n % kKeys)});
        if (batch.size() == kBatch || i + 1 == per_thread) {
          if (!b->publish("bench", batch).ok()) std::exit(1);
          batch.clear();
        }
      }
    });
  }
  for (auto& p : pubs) p.join();
  f.publish = (kThreads * per_thread) / seconds_since(t0);

  t0 = Clock::now();
  size_t got = 0;
  std::vector<std::string> ids;
  while (got < static_cast<size_t>(kThreads * per_thread)) {
    auto msgs = b->pull("bench.work", 1000, 1'000'000);
    if (!msgs.ok()) std::exit(1);
    ids.clear();
    for (auto& m : *msgs) ids.push_back(m.ack_id);
    if (!b->ack("bench.work", ids).ok()) std::exit(1);
    got += msgs->size();
  }
  f.consume = got / seconds_since(t0);

  // Latency at a steady rate.
  std::vector<double> lat;
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    std::vector<std::string> ack_ids;
    while (!done) {
      auto msgs = b->pull("bench.work", 1000, 100'000);
      const int64_t t = now_us();
      ack_ids.clear();
      for (auto& m : *msgs) {
        lat.push_back(static_cast<double>(t - std::stoll(m.message.data.substr(0, 20))));
        ack_ids.push_back(m.ack_id);
      }
      if (!ack_ids.empty()) (void)b->ack("bench.work", ack_ids);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    std::vector<OutgoingMessage> batch;
    for (int k = 0; k < 10; ++k) {
      batch.push_back({payload(size, now_us()), {}, "k" + std::to_string((i * 10 + k) % kKeys)});
    }
    (void)b->publish("bench", batch);
    std::this_thread::sleep_for(std::chrono::microseconds(1000));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  done = true;
  consumer.join();
  std::tie(f.p50_us, f.p99_us) = percentiles(lat);
  return f;
}

// ---- NATS JetStream ------------------------------------------------------------------------

Figures run_nats(const Options& o, size_t size, int port) {
  Figures f;
  const std::string dir = o.dir + "/nats";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  NatsServer server(port, dir);
  natsConnection* nc = server.connect();
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 4096;
  jo.PublishAsync.StallWait = 2000;  // ms; publish_async() waits longer when it must
  jsCtx* js = nullptr;
  nats_check(natsConnection_JetStream(&js, nc, &jo), "jetstream");
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = "BENCH";
  const char* subjects[] = {"bench.>"};
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  nats_check(js_AddStream(nullptr, js, &sc, nullptr, nullptr), "add stream");

  std::vector<std::string> subjects_by_key;
  for (int k = 0; k < kKeys; ++k) subjects_by_key.push_back("bench.k" + std::to_string(k));
  const std::string body = payload(size, 0);
  auto t0 = Clock::now();
  for (int i = 0; i < o.messages; ++i) {
    nats_check(publish_async(js, subjects_by_key[i % kKeys].c_str(), body.data(),
                             static_cast<int>(body.size())),
               "publish");
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60'000;
  nats_check(js_PublishAsyncComplete(js, &po), "publish complete");
  f.publish = o.messages / seconds_since(t0);

  natsSubscription* sub = nullptr;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.MaxAckPending = 100'000;
  nats_check(js_PullSubscribe(&sub, js, "bench.>", "work", nullptr, &so, nullptr),
             "pull subscribe");
  t0 = Clock::now();
  int got = 0;
  while (got < o.messages) {
    natsMsgList list{};
    natsStatus s = natsSubscription_Fetch(&list, sub, 1000, 5000, nullptr);
    if (s != NATS_OK && s != NATS_TIMEOUT) nats_check(s, "fetch");
    for (int i = 0; i < list.Count; ++i) nats_check(natsMsg_Ack(list.Msgs[i], nullptr), "ack");
    got += list.Count;
    natsMsgList_Destroy(&list);
  }
  natsConnection_Flush(nc);
  f.consume = got / seconds_since(t0);

  std::vector<double> lat;
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    while (!done) {
      natsMsgList list{};
      natsStatus s = natsSubscription_Fetch(&list, sub, 1000, 100, nullptr);
      const int64_t t = now_us();
      if (s == NATS_OK) {
        for (int i = 0; i < list.Count; ++i) {
          lat.push_back(static_cast<double>(t - std::atoll(natsMsg_GetData(list.Msgs[i]))));
          natsMsg_Ack(list.Msgs[i], nullptr);
        }
      }
      natsMsgList_Destroy(&list);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    for (int k = 0; k < 10; ++k) {
      const std::string m = payload(size, now_us());
      nats_check(publish_async(js, subjects_by_key[(i * 10 + k) % kKeys].c_str(), m.data(),
                               static_cast<int>(m.size())),
                 "publish");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(1000));
  }
  js_PublishAsyncComplete(js, &po);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  done = true;
  consumer.join();
  std::tie(f.p50_us, f.p99_us) = percentiles(lat);
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return f;
}

long peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  }
  return -1;
}

}  // namespace
}  // namespace backbone::bench

int main(int argc, char** argv) {
  using namespace backbone;
  using namespace backbone::bench;
  Options o;
  bool backlog_only = false;
  CLI::App app{"bench/broker: the embedded broker against NATS JetStream"};
  app.add_option("--messages", o.messages, "Messages per run");
  app.add_option("--rounds", o.rounds, "Rounds (the median is reported)");
  app.add_option("--backlog", o.backlog, "Backlog size for the memory figure");
  app.add_option("--dir", o.dir, "Folder for the brokers' files");
  app.add_flag("--backlog-child", backlog_only, "(internal) measure the backlog's memory");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(o.dir);
  if (backlog_only) {
    // A fresh process, so that the peak RSS is the backlog's alone.
    auto b = open_ours(embedded_url(o.dir + "/backlog"));
    std::vector<OutgoingMessage> batch;
    for (int i = 0; i < o.backlog; ++i) {
      batch.push_back({payload(256, 0), {}, "k" + std::to_string(i % kKeys)});
      if (batch.size() == 1000) {
        if (!b->publish("bench", batch).ok()) return 1;
        batch.clear();
      }
    }
    const long after_publish = peak_rss_mb();
    b.reset();
    BrokerOptions bo;
    bo.url = "embedded://" + o.dir + "/backlog";
    auto reopened = Broker::open(bo);  // recovery indexes the whole backlog
    if (!reopened.ok()) return 1;
    auto stats = (*reopened)->stats("bench.work");
    std::printf(
        "backlog: %d unacked 256 B messages (stats say %llu); peak RSS %ld MB after "
        "publishing, %ld MB after reopening\n",
        o.backlog, static_cast<unsigned long long>(stats.ok() ? stats->undelivered.value_or(0) : 0),
        after_publish, peak_rss_mb());
    std::filesystem::remove_all(o.dir + "/backlog");
    return 0;
  }

  std::printf("bench/broker  machine: %s\n", machine_description().c_str());
  std::printf("%d messages per run over %d ordering keys, median of %d rounds\n", o.messages, kKeys,
              o.rounds);
  std::printf(
      "durability: backbone (embedded) acks a publish after fsync (group commit); JetStream "
      "(nats-server %s, file storage, 1 replica), and backbone-nats on it, ack before fsync\n"
      "ratio embedded = backbone / jetstream; ratio nats = backbone-nats / jetstream (its "
      "floor)\n\n",
      "2.9");
  std::printf("%-6s %-14s %14s %14s %10s %10s\n", "size", "system", "publish msg/s",
              "consume msg/s", "p50 us", "p99 us");
  int port = 14222;
  for (size_t size : {size_t{256}, size_t{1024}}) {
    // Per system: publish, consume, p50, p99 of each round.
    enum { kEmbedded, kJetStream, kOnNats, kSystems };
    std::vector<double> pub[kSystems], con[kSystems], p50[kSystems], p99[kSystems];
    std::vector<double> ratio_pub[2], ratio_con[2];
    for (int r = 0; r < o.rounds; ++r) {
      Figures f[kSystems];
      f[kEmbedded] = run_ours(o, size, embedded_url(o.dir + "/ours"));
      f[kJetStream] = run_nats(o, size, port++);
      {
        const std::string dir = o.dir + "/nats-backend";
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        NatsServer server(port++, dir);
        natsConnection_Destroy(server.connect());  // started
        f[kOnNats] = run_ours(o, size, server.url() + "?namespace=bench");
      }
      for (int s = 0; s < kSystems; ++s) {
        pub[s].push_back(f[s].publish);
        con[s].push_back(f[s].consume);
        p50[s].push_back(f[s].p50_us);
        p99[s].push_back(f[s].p99_us);
      }
      ratio_pub[0].push_back(f[kEmbedded].publish / f[kJetStream].publish);
      ratio_con[0].push_back(f[kEmbedded].consume / f[kJetStream].consume);
      ratio_pub[1].push_back(f[kOnNats].publish / f[kJetStream].publish);
      ratio_con[1].push_back(f[kOnNats].consume / f[kJetStream].consume);
    }
    const char* names[kSystems] = {"backbone", "jetstream", "backbone-nats"};
    for (int s = 0; s < kSystems; ++s) {
      std::printf("%-6zu %-14s %14.0f %14.0f %10.0f %10.0f\n", size, names[s], median(pub[s]),
                  median(con[s]), median(p50[s]), median(p99[s]));
    }
    std::printf("%-6zu %-14s %14.2f %14.2f\n", size, "ratio embedded", median(ratio_pub[0]),
                median(ratio_con[0]));
    std::printf("%-6zu %-14s %14.2f %14.2f\n", size, "ratio nats", median(ratio_pub[1]),
                median(ratio_con[1]));
  }
  std::filesystem::remove_all(o.dir + "/ours");
  std::filesystem::remove_all(o.dir + "/nats");
  std::filesystem::remove_all(o.dir + "/nats-backend");
  const std::string self = argv[0];
  const std::string cmd =
      self + " --backlog-child --backlog " + std::to_string(o.backlog) + " --dir " + o.dir;
  std::fflush(stdout);
  return std::system(cmd.c_str()) == 0 ? 0 : 1;
}
