// broker_crash_helper: the child process of tests/broker/crash_test.cc.
//
//   broker_crash_helper run   BROKER_URL LOG FIRST_N   publish and consume until killed
//   broker_crash_helper drain BROKER_URL LOG           consume until nothing is left, then exit
//
// Every line goes to LOG with one write(2) on an O_APPEND file, so that lines from the two
// threads never mix and a SIGKILL loses at most the line being written:
//   P <n> <key>            publish of message n returned (it is durable)
//   D <n> <key> <attempt>  message n was delivered
//   A <n> <key>            the ack of message n returned (it is durable)
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "backbone/broker.h"

namespace {

int log_fd = -1;

void log_line(const std::string& line) {
  const std::string l = line + "\n";
  if (::write(log_fd, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::abort();
}

std::string key_of(uint64_t n) { return "k" + std::to_string(n % 8); }

// Consumes once, acking in one batch; returns how many messages came.
size_t consume_once(backbone::Broker& b, std::mt19937& rng, bool allow_nack) {
  auto got = b.pull("crash.work", 50, 100'000);
  if (!got.ok()) std::abort();
  std::vector<std::string> ack_ids;
  std::vector<const backbone::ReceivedMessage*> acking;
  for (const auto& m : *got) {
    log_line("D " + m.message.data + " " + m.message.ordering_key + " " +
             std::to_string(m.delivery_attempt));
    if (allow_nack && rng() % 20 == 0) {
      if (!b.nack("crash.work", std::span(&m.ack_id, 1)).ok()) std::abort();
      continue;
    }
    ack_ids.push_back(m.ack_id);
    acking.push_back(&m);
  }
  if (!ack_ids.empty()) {
    auto acked = b.ack("crash.work", ack_ids);
    if (!acked.ok() || *acked != ack_ids.size()) std::abort();
    for (const auto* m : acking) log_line("A " + m->message.data + " " + m->message.ordering_key);
  }
  return got->size();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return 2;
  const std::string mode = argv[1];
  log_fd = ::open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return 3;
  backbone::BrokerOptions o;
  o.url = argv[2];
  auto broker = backbone::Broker::open(o);
  if (!broker.ok()) {
    std::fprintf(stderr, "open: %s\n", broker.error().describe().c_str());
    return 4;
  }
  backbone::Broker& b = **broker;
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  if (mode == "drain") {
    int idle = 0;
    while (idle < 3) idle = consume_once(b, rng, false) == 0 ? idle + 1 : 0;
    return 0;
  }
  uint64_t n = std::strtoull(argv[4], nullptr, 10);
  std::thread consumer([&] {
    std::mt19937 crng(rng());
    for (;;) consume_once(b, crng, true);
  });
  for (;;) {
    std::vector<backbone::OutgoingMessage> batch;
    const int size = 1 + static_cast<int>(rng() % 16);
    for (int i = 0; i < size; ++i, ++n) batch.push_back({std::to_string(n), {}, key_of(n)});
    if (!b.publish("crash", batch).ok()) std::abort();
    for (const auto& m : batch) log_line("P " + m.data + " " + m.ordering_key);
  }
}
