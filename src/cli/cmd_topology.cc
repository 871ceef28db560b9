// `backbone topology show`: the topics and subscriptions of each environment with their
// policies, their state in the broker (ok, missing, drift) and their backlog.
// `backbone topology permissions --env E`: the nats-server permissions of a user confined to
// environment E (nats:// brokers).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "broker/nats/nats_permissions.h"
#include "broker/nats/nats_url.h"
#include "cli/cli_context.h"
#include "cli/topology_view.h"
#include "server/stats_json.h"

namespace backbone::cli {
namespace {

void run_show(CliContext& ctx) {
  auto topology = ctx.topology();
  if (!topology.ok()) return ctx.fail(topology.error());
  auto broker = ctx.open_broker();
  if (!broker.ok()) return ctx.fail(broker.error());
  std::map<std::string, std::string> consumers;
  const std::vector<std::string> envs =
      ctx.env_flag ? std::vector<std::string>{ctx.env()} : ctx.config.environments;
  nlohmann::json out = {{"project", topology->project()},
                        {"broker", ctx.config.broker},
                        {"environments", nlohmann::json::array()}};
  for (const std::string& env : envs) {
    for (const auto& ts : topology->subscription_templates()) {
      std::string name = ts.name;
      name.replace(name.find("{env}"), 5, env);
      consumers[name] = ts.consumer;
    }
    auto plan = plan_topology(**broker, *topology, env, ctx.config.environments);
    if (!plan.ok()) return ctx.fail(plan.error());
    nlohmann::json topics = nlohmann::json::array(), subs = nlohmann::json::array();
    if (!ctx.json) std::printf("%s (project %s)\n", env.c_str(), topology->project().c_str());
    for (const auto& item : *plan) {
      nlohmann::json j = item_json(item);
      std::optional<Result<SubscriptionStats>> stats;
      if (item.kind == ProvisionItem::Kind::kSubscription &&
          item.state != ProvisionItem::State::kMissing) {
        stats = (*broker)->stats(item.name);
        j["backlog"] = server::backlog_json(*stats);
      }
      if (item.kind == ProvisionItem::Kind::kTopic) {
        topics.push_back(j);
        if (!ctx.json) {
          std::printf("  topic        %-32s %s\n", item.name.c_str(),
                      provision_state_name(item.state));
        }
      } else {
        j["consumer"] = consumers.count(item.name) ? consumers[item.name] : "";
        subs.push_back(j);
        if (!ctx.json) {
          const SubscriptionConfig& c = *item.subscription;
          std::printf("  subscription %-32s %s\n    on %s, for %s\n    %s\n", item.name.c_str(),
                      provision_state_name(item.state), c.topic.c_str(),
                      j["consumer"].get<std::string>().c_str(), policy_text(c).c_str());
          if (stats) std::printf("    %s\n", backlog_text(*stats).c_str());
        }
      }
      if (!ctx.json) {
        for (const auto& d : item.differences) std::printf("    drift: %s\n", d.c_str());
      }
    }
    out["environments"].push_back({{"env", env}, {"topics", topics}, {"subscriptions", subs}});
  }
  if (ctx.json) std::printf("%s\n", out.dump().c_str());
}

void run_permissions(CliContext& ctx) {
  auto topology = ctx.topology();
  if (!topology.ok()) return ctx.fail(topology.error());
  if (!ctx.config.broker.starts_with("nats://")) {
    return ctx.fail(make_error(Errc::kInvalidArgument,
                               "permissions are for a nats:// broker; this one is " +
                                   nats::redact_nats_url(ctx.config.broker),
                               "broker"));
  }
  auto url = nats::parse_nats_url(ctx.config.broker);
  if (!url.ok()) return ctx.fail(url.error());
  const std::string env = ctx.env();
  std::vector<std::string> topics, subs;
  for (const TopicConfig& t : topology->topics(env)) topics.push_back(t.name);
  for (const SubscriptionConfig& s : topology->subscriptions(env)) subs.push_back(s.name);
  const std::string inbox = nats::environment_inbox_prefix(env);
  const std::string perms =
      nats::format_permissions(nats::environment_permissions(url->ns, inbox, topics, subs));
  if (ctx.json) {
    std::printf("%s\n", perms.c_str());
    return;
  }
  std::printf(
      "# nats-server permissions of a user confined to the %s environment (namespace %s).\n"
      "# Its broker URL must carry ?namespace=%s&inbox_prefix=%s\n"
      "permissions: %s\n",
      env.c_str(), url->ns.c_str(), url->ns.c_str(), inbox.c_str(), perms.c_str());
}

}  // namespace

void register_topology(CLI::App& app, CliContext& ctx) {
  auto* topo = app.add_subcommand("topology", "Inspect the messaging topology");
  topo->require_subcommand(1);
  auto* show =
      topo->add_subcommand("show",
                           "List topics and subscriptions with their policies, drift and backlog "
                           "(every environment unless --env)");
  show->callback([&ctx] { run_show(ctx); });
  auto* perms = topo->add_subcommand(
      "permissions",
      "Print the nats-server permissions of a NATS user confined to --env's topics and "
      "subscriptions");
  perms->callback([&ctx] { run_permissions(ctx); });
}

}  // namespace backbone::cli
