// `backbone stress`: the seed's stress test. Drives N events over K records from S sources,
// with rates of stale bases, conflicts, out-of-order arrivals and poison messages, through a
// pipeline of its own (a scratch folder, `--dir`) or running servers of one environment
// (`--url`, over HTTP, repeated for several: the batches go to each in turn), waits until
// everything settled, and checks:
//   0 lost (every stored event processed), 0 applied twice (one merge per event at most),
//   0 per-record order violations on the merged topic, a DLQ count equal to the poison
//   messages plus the conflicts the reject policy dead-letters, final records equal to a
//   single-threaded fold of the same events, and a clean audit chain.
// It reports ingest and end-to-end throughput and ingest-to-merged latency percentiles, and
// exits non-zero on any violation.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "cli/cli_context.h"
#include "pipeline/messages.h"
#include "server/app.h"
#include "stress/generator.h"
#include "stress/http_target.h"
#include "stress/verify.h"

namespace backbone::cli {
namespace {

using Steady = std::chrono::steady_clock;

struct StressFlags {
  stress::WorkloadOptions workload;
  // Running servers of one environment: drive them over HTTP instead of a scratch pipeline,
  // the batches spread over them in turn.
  std::vector<std::string> urls;
  std::string token;  // for --url (else BACKBONE_TOKEN)
  std::string target() const {
    std::string out;
    for (const std::string& u : urls) out += (out.empty() ? "" : ",") + u;
    return out;
  }
  size_t batch = 500;
  // With --url: connections posting at once. Each record's events go through one connection,
  // in the workload's order, so that per-record order is the workload's whatever the count.
  size_t connections = 1;
  size_t workers = 4;
  std::string dir = "var/stress";
  double timeout_s = 1800;
};

void progress(const char* what, size_t done, size_t total) {
  if (!::isatty(2) || total == 0) return;
  const int width = 30;
  const int filled = static_cast<int>(width * done / total);
  std::fprintf(stderr, "\r%-10s [%s%s] %3zu%% %zu/%zu", what, std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), done * 100 / total, done, total);
  if (done == total) std::fprintf(stderr, "\n");
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Verifies, prints the report (or --json), and sets the exit status.
void verify_and_report(CliContext& ctx, const StressFlags& f, const std::string& env,
                       const stress::Workload& workload, const stress::VerifyInput& vi,
                       double ingest_s, double total_s,
                       const std::vector<std::string>& more_violations = {}) {
  const auto& drafts = workload.events();
  auto checked = stress::verify_stress(vi);
  if (!checked.ok()) return ctx.fail(checked.error());
  checked->violations.insert(checked->violations.end(), more_violations.begin(),
                             more_violations.end());
  const auto& violations = checked->violations;
  auto& latency_ms = checked->latency_ms;
  const double p50 = percentile(latency_ms, 0.50), p95 = percentile(latency_ms, 0.95),
               p99 = percentile(latency_ms, 0.99), p999 = percentile(latency_ms, 0.999);
  long rss_kb = 0;
  if (FILE* s = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, s)) {
      if (std::sscanf(line, "VmHWM: %ld kB", &rss_kb) == 1) break;
    }
    std::fclose(s);
  }
  nlohmann::json report = {
      {"env", env},
      {"events", drafts.size()},
      {"records", f.workload.records},
      {"sources", f.workload.sources},
      {"target", f.urls.empty() ? std::string("in process") : f.target()},
      {"poison", workload.poison()},
      {"poison_path", f.urls.empty() ? "raw topic" : "HTTP (refused with 400)"},
      {"merged", checked->merged},
      {"rejected", checked->rejected},
      {"dlq", checked->dlq},
      {"ingest_seconds", ingest_s},
      {"total_seconds", total_s},
      {"ingest_events_per_second", drafts.size() / ingest_s},
      {"end_to_end_events_per_second", drafts.size() / total_s},
      {"latency_ms", {{"p50", p50}, {"p95", p95}, {"p99", p99}, {"p99.9", p999}}},
      {"peak_rss_mb", rss_kb / 1024},
      {"audit_entries_checked", checked->audit_entries},
      {"violations", violations},
      {"ok", violations.empty()}};
  if (ctx.json) {
    std::printf("%s\n", report.dump().c_str());
  } else {
    std::printf("stress %s%s%s: %zu events over %zu records from %zu sources, %zu poison%s\n",
                env.c_str(), f.urls.empty() ? "" : " at ", f.target().c_str(), drafts.size(),
                f.workload.records, f.workload.sources, workload.poison(),
                f.urls.empty() ? "" : " (sent over HTTP, refused with 400)");
    std::printf("  ingest        %8.0f events/s (%.1f s)\n", drafts.size() / ingest_s, ingest_s);
    std::printf("  end to end    %8.0f events/s (%.1f s until settled)\n", drafts.size() / total_s,
                total_s);
    std::printf("  ingest->merged latency ms: p50 %.1f  p95 %.1f  p99 %.1f  p99.9 %.1f\n", p50, p95,
                p99, p999);
    std::printf("  merged %zu, rejected %zu, DLQ %zu, audit entries %llu, peak RSS %ld MB\n",
                checked->merged, checked->rejected, checked->dlq,
                static_cast<unsigned long long>(checked->audit_entries), rss_kb / 1024);
    std::printf("  checks: %s\n", violations.empty()
                                      ? "0 lost, 0 applied twice, 0 order violations, DLQ count "
                                        "right, records equal the fold, audit chain intact"
                                      : "FAILED");
    for (const auto& v : violations) std::printf("  VIOLATION: %s\n", v.c_str());
  }
  if (!violations.empty()) ctx.exit_status = 1;
}

void run_stress(CliContext& ctx, const StressFlags& f) {
  const std::string env = ctx.env();
  std::error_code ec;
  std::filesystem::remove_all(f.dir, ec);
  std::filesystem::create_directories(f.dir, ec);
  Config config = ctx.config;
  config.store = "sqlite://" + f.dir + "/{env}.db";
  config.broker = "embedded://" + f.dir + "/broker";
  config.tokens = f.dir + "/tokens.json";
  server::AppOptions ao;
  ao.config = config;
  ao.envs = {env};
  ao.workers = f.workers;
  auto app = server::App::open(ao);
  if (!app.ok()) return ctx.fail(app.error());
  Broker& broker = (*app)->broker();
  const Topology& topology = (*app)->topology();
  auto p = (*app)->pipeline(env);
  if (!p.ok()) return ctx.fail(p.error());
  pipeline::EnvironmentPipeline& pipe = **p;
  // An ordered subscription of our own on the merged topic, to check the per-record order.
  const std::string merged_topic = topology.topic_name(TopicFamily::kMerged, env);
  SubscriptionConfig verify;
  verify.name = merged_topic + ".stress-verify";
  verify.topic = merged_topic;
  verify.ordered = true;
  verify.ack_deadline_us = 600 * kSecond;
  if (auto r = broker.create_subscription(verify); !r.ok()) return ctx.fail(r.error());
  // And one on the DLQ topic: the pipeline's DLQ inspector holds the inspect subscription's
  // messages of open dead letters.
  SubscriptionConfig dlq_verify;
  dlq_verify.name = topology.topic_name(TopicFamily::kDlq, env) + ".stress-verify";
  dlq_verify.topic = topology.topic_name(TopicFamily::kDlq, env);
  dlq_verify.ack_deadline_us = 600 * kSecond;
  if (auto r = broker.create_subscription(dlq_verify); !r.ok()) return ctx.fail(r.error());

  stress::Workload workload(f.workload);
  const auto& drafts = workload.events();
  EnvPublisher poison_pub(broker, topology, env, config.environments);
  std::vector<EventId> ids;
  ids.reserve(drafts.size());
  size_t poison_sent = 0;
  const auto t0 = Steady::now();
  for (size_t i = 0; i < drafts.size(); i += f.batch) {
    const size_t n = std::min(f.batch, drafts.size() - i);
    auto out = pipe.ingest(std::span(drafts.data() + i, n));
    if (!out.ok()) return ctx.fail(out.error());
    for (const auto& o : *out) ids.push_back(o.id);
    // Poison messages, spread over the run: not events at all, straight to the raw topic.
    const size_t due = workload.poison() * (i + n) / std::max<size_t>(1, drafts.size());
    for (; poison_sent < due; ++poison_sent) {
      auto r = poison_pub.publish_record(TopicFamily::kRaw, {"stress", "poison"},
                                         "not an event " + std::to_string(poison_sent));
      if (!r.ok()) return ctx.fail(r.error());
    }
    progress("ingest", i + n, drafts.size());
  }
  const double ingest_s = std::chrono::duration<double>(Steady::now() - t0).count();

  // Wait until everything settled: nothing unprocessed, nothing left in the stages.
  const auto raw = topology.subscription_for("merge", env);
  const auto retry = topology.subscription_for("retry", env);
  for (;;) {
    auto un = pipe.ingest_store().unprocessed(1, std::nullopt);
    auto a = broker.stats(raw->name);
    auto b = broker.stats(retry->name);
    if (!un.ok() || !a.ok() || !b.ok())
      return ctx.fail(make_error(Errc::kUnavailable, "lost the pipeline"));
    // Retry copies of events merged meanwhile may still wait out a backoff in the error
    // subscription; they change nothing, so they are not waited for.
    // The broker here is the pipeline's own, so where it knows only its client's part (pubsub://)
    // that part is all of it.
    const uint64_t retry_in_flight = b->in_flight.value_or(b->client ? b->client->in_flight : 0);
    const bool settled = un->empty() && a->idle().value_or(false) && retry_in_flight == 0;
    if (settled) break;
    if (std::chrono::duration<double>(Steady::now() - t0).count() > f.timeout_s) {
      return ctx.fail(
          make_error(Errc::kUnavailable, "the pipeline did not settle within the timeout"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double total_s = std::chrono::duration<double>(Steady::now() - t0).count();
  (*app)->stop();

  stress::VerifyInput vi;
  vi.store = &pipe.merge_store();
  stress::use_broker(vi, broker, verify.name, dlq_verify.name);
  vi.sent = ids;
  vi.poison = workload.poison();
  verify_and_report(ctx, f, env, workload, vi, ingest_s, total_s);
}

// --url: the workload goes to a running server over HTTP; the checks read the server's store
// (as reader, through the configured store URL) and its merged topic and DLQ over HTTP.
void run_against_url(CliContext& ctx, const StressFlags& f) {
  const std::string env = ctx.env();
  std::string token = f.token;
  if (token.empty()) {
    if (const char* t = std::getenv("BACKBONE_TOKEN")) token = t;
  }
  // A target per server and connection: an HTTP client serves one request at a time.
  const size_t connections = std::max<size_t>(1, f.connections);
  std::vector<std::vector<std::unique_ptr<stress::HttpTarget>>> targets(connections);
  for (auto& mine : targets) {
    for (const std::string& url : f.urls) {
      auto t = stress::HttpTarget::connect(url, token, env);
      if (!t.ok()) return ctx.fail(t.error());
      mine.push_back(std::move(*t));
    }
  }
  stress::HttpTarget& first = *targets.front().front();
  auto store = ctx.open_store(Role::kReader);
  if (!store.ok()) return ctx.fail(store.error());
  stress::WorkloadOptions wo = f.workload;
  // Records of this run's own, so that runs on one server do not mix.
  wo.record_prefix = "run" + std::to_string(SystemClock::instance().now().micros() / 1000) + "-r";
  stress::Workload workload(wo);
  const auto& drafts = workload.events();
  // Each connection takes the records whose key hashes to it, and sends their events in the
  // workload's order (the fold's), one batch after another, each to the next server.
  std::vector<std::vector<size_t>> share(connections);
  for (size_t i = 0; i < drafts.size(); ++i) {
    share[std::hash<std::string>{}(drafts[i].record_type + '\n' + drafts[i].record_id) %
          connections]
        .push_back(i);
  }
  const auto t0 = Steady::now();
  std::vector<EventId> ids(drafts.size());
  std::vector<std::optional<Error>> failed(connections);
  std::atomic<size_t> sent{0};
  std::vector<std::thread> posting;
  const size_t batch = std::max<size_t>(1, f.batch);
  for (size_t c = 0; c < connections; ++c) {
    posting.emplace_back([&, c] {
      const std::vector<size_t>& mine = share[c];
      std::vector<EventDraft> part;
      for (size_t at = 0, k = 0; at < mine.size(); at += batch, ++k) {
        const size_t end = std::min(mine.size(), at + batch);
        part.assign({});
        for (size_t j = at; j < end; ++j) part.push_back(drafts[mine[j]]);
        auto got = targets[c][(k + c) % targets[c].size()]->ingest(part, batch, nullptr);
        if (!got.ok()) {
          failed[c] = got.error();
          return;
        }
        for (size_t j = at; j < end; ++j) ids[mine[j]] = (*got)[j - at];
        if (connections == 1) progress("ingest", sent += end - at, drafts.size());
      }
    });
  }
  for (std::thread& t : posting) t.join();
  for (const auto& e : failed) {
    if (e) return ctx.fail(*e);
  }
  // Poison cannot reach the raw topic through the API: it is sent, and must be refused.
  auto accepted = first.send_malformed(workload.poison());
  if (!accepted.ok()) return ctx.fail(accepted.error());
  const double ingest_s = std::chrono::duration<double>(Steady::now() - t0).count();
  size_t processed = 0;
  for (;;) {
    for (; processed < ids.size(); ++processed) {
      auto e = (*store)->get(ids[processed]);
      if (!e.ok()) return ctx.fail(e.error());
      if (!e->processed) break;
    }
    progress("merge", processed, ids.size());
    if (processed == ids.size()) {
      // Every server's stages: each knows only its own part on pubsub://.
      bool all_idle = true;
      for (auto& t : targets.front()) {
        auto idle = t->stages_idle();
        if (!idle.ok()) return ctx.fail(idle.error());
        all_idle = all_idle && *idle;
      }
      if (all_idle) break;
    }
    if (std::chrono::duration<double>(Steady::now() - t0).count() > f.timeout_s) {
      return ctx.fail(
          make_error(Errc::kUnavailable, "the server did not settle within the timeout"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double total_s = std::chrono::duration<double>(Steady::now() - t0).count();
  stress::VerifyInput vi;
  vi.store = store->get();
  first.use_for(vi);
  vi.sent = ids;
  vi.poison = 0;
  std::vector<std::string> more;
  if (*accepted) {
    more.push_back(std::to_string(*accepted) + " of " + std::to_string(workload.poison()) +
                   " malformed events were accepted");
  }
  verify_and_report(ctx, f, env, workload, vi, ingest_s, total_s, more);
}

}  // namespace

void register_stress(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("stress", "Drive a checked workload through a scratch pipeline");
  auto f = std::make_shared<StressFlags>();
  cmd->add_option("--events", f->workload.events, "Events to send");
  cmd->add_option("--records", f->workload.records, "Records they touch");
  cmd->add_option("--sources", f->workload.sources, "Sources they come from");
  cmd->add_option("--stale-rate", f->workload.stale_rate, "Share of stale bases that rebase");
  cmd->add_option("--conflict-rate", f->workload.conflict_rate, "Share of rejected conflicts");
  cmd->add_option("--gap-rate", f->workload.gap_rate, "Share of out-of-order pairs");
  cmd->add_option("--poison-rate", f->workload.poison_rate, "Share of poison messages");
  cmd->add_option("--seed", f->workload.seed, "Seed of the workload");
  cmd->add_option("--batch", f->batch, "Events per ingest call");
  cmd->add_option("--workers", f->workers, "Workers per stage");
  cmd->add_option("--connections", f->connections,
                  "With --url: connections posting at once (each record's events go through "
                  "one, in order)");
  cmd->add_option("--dir", f->dir, "Scratch folder (emptied first)");
  cmd->add_option("--timeout", f->timeout_s, "Seconds to wait for the pipeline to settle");
  cmd->add_option("--url", f->urls,
                  "A running server (http://host:port) to drive over HTTP instead of a scratch "
                  "pipeline; the checks read the configured store. Repeat it for several "
                  "servers of one environment: the batches go to each in turn, and the merged "
                  "topic and the DLQ are read through the first");
  cmd->add_option("--token", f->token,
                  "With --url: a token with the publish, read and subscribe roles (default: "
                  "BACKBONE_TOKEN)");
  cmd->callback([&ctx, f] { f->urls.empty() ? run_stress(ctx, *f) : run_against_url(ctx, *f); });
}

}  // namespace backbone::cli
