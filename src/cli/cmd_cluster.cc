// `backbone cluster show [--json]`: the processes serving the environment, each bucket's owner,
// epoch and lease age, and each bucket's backlog (unprocessed events), read from the
// environment's store as the reader role, with no `serve` needed (doc/scale_out.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "server/cluster_json.h"

namespace backbone::cli {
namespace {

std::string seconds_text(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", v.get<double>());
  return buf;
}

void show_cluster(CliContext& ctx) {
  auto store = ctx.open_store(Role::kReader);
  if (!store.ok()) return ctx.fail(store.error());
  auto view = (*store)->cluster_view();
  if (!view.ok()) return ctx.fail(view.error());
  auto backlog = server::bucket_backlog(**store, static_cast<uint32_t>(view->leases.size()));
  if (!backlog.ok()) return ctx.fail(backlog.error());
  nlohmann::json out = server::cluster_json(*view, *backlog, SystemClock::instance().now());
  out["env"] = ctx.env();
  if (ctx.json) {
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  if (view->leases.empty()) {
    std::printf("%s: no buckets recorded (no `serve` has split this environment's work)\n",
                ctx.env().c_str());
    return;
  }
  std::printf("%s: %zu members, %zu buckets (%d unowned), backlog %llu%s\n", ctx.env().c_str(),
              view->members.size(), view->leases.size(), out["unowned"].get<int>(),
              static_cast<unsigned long long>(out["backlog"].get<uint64_t>()),
              backlog->capped ? " or more" : "");
  for (const auto& m : out["members"]) {
    std::printf("  member %s  %s  beat %llu (%s ago)%s  %d buckets\n",
                m["id"].get<std::string>().c_str(), m["address"].get<std::string>().c_str(),
                static_cast<unsigned long long>(m["beat"].get<uint64_t>()),
                seconds_text(m["beat_age_seconds"]).c_str(),
                m["leaving"].get<bool>() ? " leaving" : "", m["buckets"].get<int>());
  }
  std::printf("  %-6s  %-40s  %6s  %10s  %8s\n", "bucket", "owner", "epoch", "lease age",
              "backlog");
  for (const auto& l : out["leases"]) {
    std::printf("  %-6d  %-40s  %6llu  %10s  %8llu\n", l["bucket"].get<int>(),
                l["owner"].is_null() ? "-" : l["owner"].get<std::string>().c_str(),
                static_cast<unsigned long long>(l["epoch"].get<uint64_t>()),
                seconds_text(l["age_seconds"]).c_str(),
                static_cast<unsigned long long>(l["backlog"].get<uint64_t>()));
  }
}

}  // namespace

void register_cluster(CLI::App& app, CliContext& ctx) {
  auto* cluster = app.add_subcommand("cluster", "See the processes that share an environment");
  cluster->require_subcommand(1);
  auto* show = cluster->add_subcommand(
      "show", "Members, each bucket's owner, epoch and lease age, and its backlog");
  show->callback([&ctx] { show_cluster(ctx); });
}

}  // namespace backbone::cli
