// The embedded broker under SIGKILL: a child process publishes and consumes (two threads) and
// is killed at a random point, again and again; then a last child drains what is left. From
// the children's log (crash_helper.cc) the test proves:
//  - every publish that returned was delivered;
//  - no delivery follows a returned ack of the same message;
//  - per ordering key, messages were delivered in publish order, one at a time: a message is
//    delivered only after every earlier message of its key was delivered and acked.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "backbone/broker.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

using namespace std::chrono_literals;

TEST(BrokerCrash, NothingAcknowledgedIsLostAndKeyOrderHoldsAcrossSigkills) {
  TempDir dir;
  const std::string url = "embedded://" + dir.file("broker") + "?segment_bytes=65536";
  const std::string log = dir.file("events.log");
  {
    BrokerOptions o;
    o.url = url;
    auto b = Broker::open(o);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->create_topic({"crash", {}}).ok());
    SubscriptionConfig c;
    c.name = "crash.work";
    c.topic = "crash";
    c.ordered = true;
    c.ack_deadline_us = 10 * kSecond;
    ASSERT_TRUE((*b)->create_subscription(c).ok());
  }
  std::mt19937 rng(20261128);
  constexpr int kIterations = 12;
  auto file_size = [](const std::string& path) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    return ec ? uintmax_t{0} : n;
  };
  for (int i = 0; i < kIterations; ++i) {
    const uintmax_t logged = file_size(log);
    const pid_t child =
        spawn({BROKER_CRASH_HELPER, "run", url, log, std::to_string(uint64_t(i + 1) * 1'000'000)});
    ASSERT_GT(child, 0);
    // The kill falls at a random point of the child's work, not of its start (which a
    // sanitized build makes slow): wait for its first logged line, then a random while.
    const auto started = std::chrono::steady_clock::now();
    while (file_size(log) <= logged && std::chrono::steady_clock::now() - started < 20s) {
      std::this_thread::sleep_for(5ms);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 250));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child stopped on its own, status " << status;
  }
  const pid_t drain = spawn({BROKER_CRASH_HELPER, "drain", url, log});
  int status = 0;
  ::waitpid(drain, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  std::ifstream in(log);
  std::string line;
  std::set<uint64_t> published, delivered;
  std::map<uint64_t, size_t> acked_at;                   // n -> line of its last logged ack
  std::map<uint64_t, std::vector<size_t>> delivered_at;  // n -> lines of its deliveries
  std::vector<std::tuple<char, uint64_t, std::string>> lines;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    char kind;
    uint64_t n;
    std::string key;
    if (!(s >> kind >> n >> key)) continue;  // a line cut by the kill
    lines.emplace_back(kind, n, key);
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& [kind, n, key] = lines[i];
    if (kind == 'P') published.insert(n);
    if (kind == 'D') {
      delivered.insert(n);
      delivered_at[n].push_back(i);
    }
    if (kind == 'A') acked_at[n] = i;
  }
  ASSERT_GT(published.size(), 100u) << "the children did too little to prove anything";
  std::printf(
      "crash test: %d kills, %zu publishes acknowledged, %zu messages delivered, %zu acks\n",
      kIterations, published.size(), delivered.size(), acked_at.size());
  // Every acknowledged publish was delivered.
  for (uint64_t n : published) EXPECT_TRUE(delivered.count(n)) << "lost message " << n;
  // Nothing acked came back.
  for (const auto& [n, line_no] : acked_at) {
    for (size_t d : delivered_at[n])
      EXPECT_LT(d, line_no) << "message " << n << " came back after its ack";
  }
  // Per key, in publish order (n grows with publish order, across children too): the first
  // deliveries come in that order, and when a message is delivered, its predecessor of the same
  // key is settled: its ack was logged before, or it never came again.
  std::map<std::string, std::vector<uint64_t>> by_key;
  for (uint64_t n : published) by_key["k" + std::to_string(n % 8)].push_back(n);
  for (const auto& [n, at] : delivered_at) {
    if (!published.count(n)) by_key["k" + std::to_string(n % 8)].push_back(n);
  }
  std::map<uint64_t, uint64_t> predecessor;
  for (auto& [key, ns] : by_key) {
    std::sort(ns.begin(), ns.end());
    for (size_t j = 1; j < ns.size(); ++j) {
      predecessor[ns[j]] = ns[j - 1];
      const auto& a = delivered_at[ns[j - 1]];
      const auto& b = delivered_at[ns[j]];
      if (!a.empty() && !b.empty()) {
        EXPECT_LT(a.front(), b.front()) << key << ": " << ns[j] << " before " << ns[j - 1];
      }
    }
  }
  size_t checked = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& [kind, n, key] = lines[i];
    if (kind != 'D' || !predecessor.count(n)) continue;
    const uint64_t m = predecessor[n];
    const bool acked_before = acked_at.count(m) && acked_at[m] < i;
    const bool never_again = !delivered_at[m].empty() && delivered_at[m].back() < i;
    EXPECT_TRUE(acked_before || never_again)
        << key << ": " << n << " delivered while " << m << " was still out";
    ++checked;
  }
  EXPECT_GT(checked, 100u);
}

}  // namespace
}  // namespace backbone::testing
