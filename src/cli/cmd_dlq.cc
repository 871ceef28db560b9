// `backbone dlq list | show ID | replay ID | replay --all [--dry-run] | resolve ID
// --accept|--discard`: the environment's dead letters, from its audit log (pipeline/dlq.h).
// `list` and `replay --all` take a filter (--record-type, --reason, --stage, --since, --until).
// `replay` and `resolve --accept` send events back to the raw topic, so they need the broker,
// which a running `serve` holds (then use its HTTP routes, POST /v1/envs/E/dlq/ID:replay and
// :resolve). Every change is in the admin audit, with who ran it.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "backbone/event_json.h"
#include "cli/cli_context.h"
#include "pipeline/pipeline.h"

namespace backbone::cli {
namespace {

Result<std::unique_ptr<pipeline::EnvironmentPipeline>> open_pipeline(
    CliContext& ctx, std::unique_ptr<Broker>& broker, Topology& topology) {
  auto t = ctx.topology();
  if (!t.ok()) return t.error();
  topology = std::move(*t);
  auto b = ctx.open_broker();
  if (!b.ok()) {
    Error e = b.error();
    e.message += " (if `backbone serve` is running, use its API: POST /v1/envs/" + ctx.env() +
                 "/dlq/ID:replay, /dlq:replay or /dlq/ID:resolve)";
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

// The filter flags of `list` and `replay --all`, by the names DlqFilter::from takes.
struct FilterFlags {
  std::map<std::string, std::string> values;
  void add_to(CLI::App* cmd) {
    for (auto [flag, name, help] :
         {std::tuple{"--record-type", "record_type", "Only dead letters of this record type"},
          std::tuple{"--reason", "reason", "Only those whose reason contains this text"},
          std::tuple{"--stage", "stage", "Only those of this stage: merge or retry"},
          std::tuple{"--since", "since", "Only those dead-lettered at or after (RFC 3339)"},
          std::tuple{"--until", "until", "Only those dead-lettered before (RFC 3339)"}}) {
      cmd->add_option(flag, values[name], help);
    }
  }
  Result<pipeline::DlqFilter> filter() const {
    return pipeline::DlqFilter::from([this](const char* name) -> std::optional<std::string> {
      auto it = values.find(name);
      if (it == values.end() || it->second.empty()) return std::nullopt;
      return it->second;
    });
  }
};

void print_entries(CliContext& ctx, const std::vector<pipeline::DlqEntry>& entries, const char* key,
                   bool dry_run) {
  if (ctx.json) {
    std::string out = "{\"env\":" + nlohmann::json(ctx.env()).dump() + ",\"" + key + "\":[";
    for (size_t i = 0; i < entries.size(); ++i) {
      out += (i ? "," : "") + pipeline::dlq_entry_to_json(entries[i], false);
    }
    std::printf("%s]%s}\n", out.c_str(), dry_run ? ",\"dry_run\":true" : "");
    return;
  }
  for (const auto& e : entries) {
    const Event& ev = e.event.event;
    std::printf("%s  %s/%s  base %llu  %s  %s  %s\n", ev.id().str().c_str(),
                ev.record_type().c_str(), ev.record_id().c_str(),
                static_cast<unsigned long long>(ev.base_version()),
                e.dead_lettered.created_at.to_rfc3339().c_str(), pipeline::dlq_stage(e).c_str(),
                pipeline::dlq_reason(e).c_str());
  }
}

Result<EventId> id_arg(const std::string& text) {
  auto id = EventId::parse(text);
  if (!id.ok()) return make_error(Errc::kInvalidArgument, id.error().message, "id");
  return *id;
}

}  // namespace

void register_dlq(CLI::App& app, CliContext& ctx) {
  auto* dlq = app.add_subcommand("dlq", "Inspect, replay and resolve dead-lettered events");
  dlq->require_subcommand(1);

  auto* list = dlq->add_subcommand("list", "List the environment's dead letters");
  auto list_filter = std::make_shared<FilterFlags>();
  list_filter->add_to(list);
  list->callback([&ctx, list_filter] {
    auto filter = list_filter->filter();
    if (!filter.ok()) return ctx.fail(filter.error());
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto all = pipeline::list_dead_letters(**store);
    if (!all.ok()) return ctx.fail(all.error());
    std::erase_if(*all, [&](const pipeline::DlqEntry& e) { return !filter->matches(e); });
    if (all->empty() && !ctx.json) {
      std::printf("%s: no dead letters%s\n", ctx.env().c_str(),
                  list_filter->values.empty() ? "" : " match");
    }
    print_entries(ctx, *all, "dead_letters", false);
  });

  auto* show = dlq->add_subcommand("show", "Show a dead letter with its failure history");
  auto show_id = std::make_shared<std::string>();
  show->add_option("id", *show_id, "The event's id")->required();
  show->callback([&ctx, show_id] {
    auto id = id_arg(*show_id);
    if (!id.ok()) return ctx.fail(id.error());
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto e = pipeline::show_dead_letter(**store, *id);
    if (!e.ok()) return ctx.fail(e.error());
    const auto j = nlohmann::json::parse(pipeline::dlq_entry_to_json(*e, true));
    std::printf("%s\n", j.dump(ctx.json ? -1 : 2).c_str());
  });

  auto* replay = dlq->add_subcommand(
      "replay", "Send dead letters back to the raw topic: the merge stage decides them afresh");
  auto replay_id = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  auto dry_run = std::make_shared<bool>(false);
  auto replay_filter = std::make_shared<FilterFlags>();
  replay->add_option("id", *replay_id, "The event's id");
  replay->add_flag("--all", *all, "Replay every dead letter the filter takes, in history order");
  replay->add_flag("--dry-run", *dry_run, "With --all: say which, in which order, and stop");
  replay_filter->add_to(replay);
  replay->callback([&ctx, replay_id, all, dry_run, replay_filter] {
    if (replay_id->empty() && !*all) {
      return ctx.fail(
          make_error(Errc::kInvalidArgument, "give the id of the event to replay, or --all", "id"));
    }
    if (!replay_id->empty() && *all) {
      return ctx.fail(make_error(Errc::kInvalidArgument, "give an event id or --all, not both"));
    }
    if (*all) {
      auto filter = replay_filter->filter();
      if (!filter.ok()) return ctx.fail(filter.error());
      if (*dry_run) {  // needs only the store: works while `serve` runs
        auto store = ctx.open_store(Role::kReader);
        if (!store.ok()) return ctx.fail(store.error());
        auto chosen = pipeline::select_dead_letters(**store, *filter);
        if (!chosen.ok()) return ctx.fail(chosen.error());
        if (!ctx.json) {
          std::printf("%s: would replay %zu event(s), in this order:\n", ctx.env().c_str(),
                      chosen->size());
        }
        return print_entries(ctx, *chosen, "would_replay", true);
      }
      std::unique_ptr<Broker> broker;
      Topology topology;
      auto p = open_pipeline(ctx, broker, topology);
      if (!p.ok()) return ctx.fail(p.error());
      auto done = (*p)->dlq_replay_all(*filter, false, ctx.actor());
      if (!done.ok()) return ctx.fail(done.error());
      if (auto rec = ctx.record_admin(ctx.env(), "dlq.replay_all", ctx.env(),
                                      "{\"replayed\":" + std::to_string(done->size()) + "}",
                                      "the dead letters were replayed");
          !rec.ok()) {
        return ctx.fail(rec.error());
      }
      if (ctx.json) {
        std::printf("%s\n",
                    nlohmann::json{{"env", ctx.env()}, {"replayed", done->size()}}.dump().c_str());
      } else {
        std::printf("%s: replayed %zu event(s)\n", ctx.env().c_str(), done->size());
      }
      return;
    }
    if (*dry_run) {
      return ctx.fail(make_error(Errc::kInvalidArgument, "--dry-run goes with --all", "--dry-run"));
    }
    auto id = id_arg(*replay_id);
    if (!id.ok()) return ctx.fail(id.error());
    std::unique_ptr<Broker> broker;
    Topology topology;
    auto p = open_pipeline(ctx, broker, topology);
    if (!p.ok()) return ctx.fail(p.error());
    if (auto r = (*p)->dlq_replay(*id, ctx.actor()); !r.ok()) return ctx.fail(r.error());
    if (auto rec = ctx.record_admin(ctx.env(), "dlq.replay", id->str(), std::nullopt,
                                    "the event was replayed");
        !rec.ok()) {
      return ctx.fail(rec.error());
    }
    if (ctx.json) {
      std::printf("%s\n",
                  nlohmann::json{{"env", ctx.env()}, {"replayed", id->str()}}.dump().c_str());
    } else {
      std::printf("%s: replayed %s\n", ctx.env().c_str(), id->str().c_str());
    }
  });

  auto* resolve = dlq->add_subcommand(
      "resolve",
      "Resolve a dead letter for good: --accept applies its change on the record's current "
      "version, --discard closes it unapplied");
  auto resolve_id = std::make_shared<std::string>();
  auto accept = std::make_shared<bool>(false);
  auto discard = std::make_shared<bool>(false);
  auto note = std::make_shared<std::string>();
  resolve->add_option("id", *resolve_id, "The event's id")->required();
  resolve->add_flag("--accept", *accept, "Apply its change on the current version");
  resolve->add_flag("--discard", *discard, "Close it without applying its change");
  resolve->add_option("--note", *note, "Why (kept in the audit log, at most 500 bytes)");
  resolve->callback([&ctx, resolve_id, accept, discard, note] {
    if (*accept == *discard) {
      return ctx.fail(make_error(Errc::kInvalidArgument, "give --accept or --discard, one of them",
                                 "resolution"));
    }
    if (note->size() > 500) {
      return ctx.fail(make_error(Errc::kInvalidArgument, "is over 500 bytes", "--note"));
    }
    auto id = id_arg(*resolve_id);
    if (!id.ok()) return ctx.fail(id.error());
    using R = pipeline::EnvironmentPipeline::DlqResolution;
    std::unique_ptr<Broker> broker;
    Topology topology;
    auto p = open_pipeline(ctx, broker, topology);
    if (!p.ok()) return ctx.fail(p.error());
    if (auto r = (*p)->dlq_resolve(*id, *accept ? R::kAccept : R::kDiscard, ctx.actor(), *note);
        !r.ok()) {
      return ctx.fail(r.error());
    }
    const char* how = *accept ? "accept" : "discard";
    if (auto rec = ctx.record_admin(ctx.env(), *accept ? "dlq.accept" : "dlq.discard", id->str(),
                                    nlohmann::json{{"note", *note}}.dump(),
                                    "the dead letter was resolved");
        !rec.ok()) {
      return ctx.fail(rec.error());
    }
    if (ctx.json) {
      std::printf("%s\n",
                  nlohmann::json{{"env", ctx.env()}, {"resolved", id->str()}, {"resolution", how}}
                      .dump()
                      .c_str());
    } else {
      std::printf("%s: %s %s\n", ctx.env().c_str(), *accept ? "accepted" : "discarded",
                  id->str().c_str());
    }
  });
}

}  // namespace backbone::cli
