// `backbone dlq list | show ID | replay ID | replay --all`: the environment's dead letters,
// from its audit log. `replay` audits `replayed` and sends the event back to the raw topic;
// it needs the broker, which a running `serve` holds (then use its HTTP route
// POST /v1/envs/E/dlq/ID:replay).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backbone/event_json.h"
#include "cli/cli_context.h"
#include "pipeline/pipeline.h"

namespace backbone::cli {
namespace {

nlohmann::json entry_json(const pipeline::DlqEntry& e, bool with_history) {
  nlohmann::json j = {
      {"event", nlohmann::json::parse(event_to_json(e.event.event, e.event.processed))},
      {"dead_lettered_at", e.dead_lettered.created_at.to_rfc3339()},
      {"detail", e.dead_lettered.detail ? nlohmann::json::parse(*e.dead_lettered.detail)
                                        : nlohmann::json(nullptr)}};
  if (with_history) {
    nlohmann::json h = nlohmann::json::array();
    for (const auto& a : e.history) {
      h.push_back(
          {{"action", audit_action_name(a.action)},
           {"at", a.created_at.to_rfc3339()},
           {"detail", a.detail ? nlohmann::json::parse(*a.detail) : nlohmann::json(nullptr)}});
    }
    j["audit"] = h;
  }
  return j;
}

std::string reason_of(const pipeline::DlqEntry& e) {
  if (!e.dead_lettered.detail) return "";
  auto d = nlohmann::json::parse(*e.dead_lettered.detail, nullptr, false);
  return d.is_object() ? d.value("reason", "") : "";
}

Result<std::unique_ptr<pipeline::EnvironmentPipeline>> open_pipeline(
    CliContext& ctx, std::unique_ptr<Broker>& broker, Topology& topology) {
  auto t = ctx.topology();
  if (!t.ok()) return t.error();
  topology = std::move(*t);
  auto b = ctx.open_broker();
  if (!b.ok()) {
    Error e = b.error();
    e.message += " (if `backbone serve` is running, replay through its API: POST /v1/envs/" +
                 ctx.env() + "/dlq/ID:replay)";
    return e;
  }
  broker = std::move(*b);
  auto url = store_url_for(ctx.config, ctx.env());
  if (!url.ok()) return url.error();
  pipeline::PipelineOptions o;
  o.env = ctx.env();
  o.environments = ctx.config.environments;
  o.store_url = *url;
  o.broker = broker.get();
  o.topology = &topology;
  return pipeline::EnvironmentPipeline::open(o);
}

}  // namespace

void register_dlq(CLI::App& app, CliContext& ctx) {
  auto* dlq = app.add_subcommand("dlq", "Inspect and replay dead-lettered events");
  dlq->require_subcommand(1);

  dlq->add_subcommand("list", "List the environment's dead letters")->callback([&ctx] {
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto list = pipeline::list_dead_letters(**store);
    if (!list.ok()) return ctx.fail(list.error());
    if (ctx.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : *list) out.push_back(entry_json(e, false));
      std::printf("%s\n", nlohmann::json{{"env", ctx.env()}, {"dead_letters", out}}.dump().c_str());
      return;
    }
    if (list->empty()) std::printf("%s: the dead-letter queue is empty\n", ctx.env().c_str());
    for (const auto& e : *list) {
      const Event& ev = e.event.event;
      std::printf("%s  %s/%s  base %llu  %s  %s\n", ev.id().str().c_str(), ev.record_type().c_str(),
                  ev.record_id().c_str(), static_cast<unsigned long long>(ev.base_version()),
                  e.dead_lettered.created_at.to_rfc3339().c_str(), reason_of(e).c_str());
    }
  });

  auto* show = dlq->add_subcommand("show", "Show a dead letter with its failure history");
  auto show_id = std::make_shared<std::string>();
  show->add_option("id", *show_id, "The event's id")->required();
  show->callback([&ctx, show_id] {
    auto id = EventId::parse(*show_id);
    if (!id.ok()) return ctx.fail(make_error(Errc::kInvalidArgument, id.error().message, "id"));
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto e = pipeline::show_dead_letter(**store, *id);
    if (!e.ok()) return ctx.fail(e.error());
    std::printf("%s\n", entry_json(*e, true).dump(ctx.json ? -1 : 2).c_str());
  });

  auto* replay = dlq->add_subcommand("replay", "Send dead letters back to the raw topic");
  auto replay_id = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  replay->add_option("id", *replay_id, "The event's id");
  replay->add_flag("--all", *all, "Replay every dead letter, in the original order");
  replay->callback([&ctx, replay_id, all] {
    if (replay_id->empty() == !*all) {
      return ctx.fail(make_error(Errc::kInvalidArgument, "give an event id or --all, not both"));
    }
    std::unique_ptr<Broker> broker;
    Topology topology;
    auto p = open_pipeline(ctx, broker, topology);
    if (!p.ok()) return ctx.fail(p.error());
    if (*all) {
      auto n = (*p)->dlq_replay_all();
      if (!n.ok()) return ctx.fail(n.error());
      if (auto rec = ctx.record_admin(ctx.env(), "dlq.replay_all", ctx.env(),
                                      "{\"replayed\":" + std::to_string(*n) + "}",
                                      "the dead letters were replayed");
          !rec.ok()) {
        return ctx.fail(rec.error());
      }
      std::printf("%s: replayed %zu event(s)\n", ctx.env().c_str(), *n);
      return;
    }
    auto id = EventId::parse(*replay_id);
    if (!id.ok()) return ctx.fail(make_error(Errc::kInvalidArgument, id.error().message, "id"));
    if (auto r = (*p)->dlq_replay(*id); !r.ok()) return ctx.fail(r.error());
    if (auto rec = ctx.record_admin(ctx.env(), "dlq.replay", id->str(), std::nullopt,
                                    "the event was replayed");
        !rec.ok()) {
      return ctx.fail(rec.error());
    }
    std::printf("%s: replayed %s\n", ctx.env().c_str(), id->str().c_str());
  });
}

}  // namespace backbone::cli
