// `backbone provision`: creates the environment's topics and subscriptions (SPEC §3) in the
// broker, and updates any whose policies drifted. Running it again changes nothing.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli_context.h"
#include "cli/topology_view.h"

namespace backbone::cli {
namespace {

void run_provision(CliContext& ctx, bool all) {
  auto topology = ctx.topology();
  if (!topology.ok()) return ctx.fail(topology.error());
  auto broker = ctx.open_broker();
  if (!broker.ok()) return ctx.fail(broker.error());
  const std::vector<std::string> envs =
      all ? ctx.config.environments : std::vector<std::string>{ctx.env()};
  nlohmann::json out = nlohmann::json::array();
  bool unfixable = false;
  for (const std::string& env : envs) {
    auto plan = provision_topology(**broker, *topology, env, ctx.config.environments);
    if (!plan.ok()) return ctx.fail(plan.error());
    int created = 0, updated = 0, unchanged = 0, bad = 0;
    for (const auto& item : *plan) {
      switch (item.state) {
        case ProvisionItem::State::kMissing:
          ++created;
          break;
        case ProvisionItem::State::kDrift:
          ++updated;
          break;
        case ProvisionItem::State::kOk:
          ++unchanged;
          break;
        case ProvisionItem::State::kUnfixable:
          ++bad;
          break;
        case ProvisionItem::State::kExtra:
          break;
      }
    }
    unfixable = unfixable || bad > 0;
    // An administrator's act when it changed something (a store that is not migrated yet has no
    // admin audit: the act is then only printed).
    if (created + updated > 0) {
      auto rec = ctx.record_admin(env, "provision", env,
                                  "{\"created\":" + std::to_string(created) +
                                      ",\"updated\":" + std::to_string(updated) + "}",
                                  "the topology was provisioned");
      if (!rec.ok() && rec.code() != Errc::kUnavailable) return ctx.fail(rec.error());
    }
    if (ctx.json) {
      nlohmann::json items = nlohmann::json::array();
      for (const auto& item : *plan) items.push_back(item_json(item));
      out.push_back({{"env", env},
                     {"created", created},
                     {"updated", updated},
                     {"unchanged", unchanged},
                     {"unfixable", bad},
                     {"changes", created + updated},
                     {"items", items}});
      continue;
    }
    std::printf("%s: %d change(s): %d created, %d updated, %d unchanged%s\n", env.c_str(),
                created + updated, created, updated, unchanged,
                bad ? (", " + std::to_string(bad) + " cannot be fixed").c_str() : "");
    for (const auto& item : *plan) {
      for (const auto& w : item.warnings) {
        std::fprintf(stderr, "warning: %s: %s\n", item.name.c_str(), w.c_str());
      }
      const char* kind = item.kind == ProvisionItem::Kind::kTopic ? "topic" : "subscription";
      if (item.state == ProvisionItem::State::kMissing) {
        std::printf("  created %s %s\n", kind, item.name.c_str());
      } else if (item.state == ProvisionItem::State::kDrift ||
                 item.state == ProvisionItem::State::kUnfixable) {
        std::printf("  %s %s %s\n",
                    item.state == ProvisionItem::State::kDrift ? "updated" : "CANNOT FIX", kind,
                    item.name.c_str());
        for (const auto& d : item.differences) std::printf("    %s\n", d.c_str());
      } else if (item.state == ProvisionItem::State::kExtra) {
        std::printf("  extra %s %s (not in the topology; left alone)\n", kind, item.name.c_str());
      }
    }
  }
  if (ctx.json) std::printf("%s\n", (all ? out : out[0]).dump().c_str());
  if (unfixable) {
    ctx.fail(make_error(Errc::kConflict,
                        "some subscriptions differ in ordering or topic, which cannot change: "
                        "delete them and provision again"));
  }
}

}  // namespace

void register_provision(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand(
      "provision", "Create the environment's topics and subscriptions in the broker (idempotent)");
  auto all = std::make_shared<bool>(false);
  cmd->add_flag("--all", *all, "Provision every configured environment");
  cmd->callback([&ctx, all] { run_provision(ctx, *all); });
}

}  // namespace backbone::cli
