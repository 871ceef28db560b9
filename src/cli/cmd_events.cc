// `backbone events get ID` and `backbone events history TYPE ID`: read events, as the reader
// role. The history is the record's timeline (pipeline/timeline.h): each event with its merge
// decision.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "backbone/event_json.h"
#include "cli/cli_context.h"
#include "pipeline/timeline.h"

namespace backbone::cli {
namespace {

// "TIME  ID  v1->v2  DECISION  SOURCE  CHANGES": the version it was based on and the one it
// made, if any.
void print_event_line(const StoredEvent& s, const std::string& decision,
                      std::optional<uint64_t> version) {
  const Event& e = s.event;
  const std::string made = version ? "v" + std::to_string(*version) : "";
  std::printf("%s  %s  v%llu->%-6s %-13s %-12s %s\n", e.timestamp().to_rfc3339().c_str(),
              e.id().str().c_str(), static_cast<unsigned long long>(e.base_version()), made.c_str(),
              decision.c_str(), e.source().c_str(), e.changes().c_str());
}

}  // namespace

void register_events(CLI::App& app, CliContext& ctx) {
  auto* events = app.add_subcommand("events", "Read stored events");
  events->require_subcommand(1);

  auto* get = events->add_subcommand("get", "Print one event by its id");
  auto id = std::make_shared<std::string>();
  get->add_option("id", *id, "The event's UUIDv7")->required();
  get->callback([&ctx, id] {
    auto parsed = EventId::parse(*id);
    if (!parsed.ok())
      return ctx.fail(make_error(Errc::kInvalidArgument, parsed.error().message, "id"));
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto ev = (*store)->get(*parsed);
    if (!ev.ok()) return ctx.fail(ev.error());
    if (ctx.json) {
      std::printf("%s\n", event_to_json(ev->event, ev->processed).c_str());
    } else {
      print_event_line(*ev, ev->processed ? "processed" : "pending", std::nullopt);
      std::printf("record %s/%s  fingerprint %s\n", ev->event.record_type().c_str(),
                  ev->event.record_id().c_str(), ev->event.fingerprint().c_str());
    }
  });

  auto* history = events->add_subcommand("history", "Print a record's events in order");
  auto type = std::make_shared<std::string>();
  auto rid = std::make_shared<std::string>();
  history->add_option("record_type", *type, "The record's type")->required();
  history->add_option("record_id", *rid, "The record's id")->required();
  history->callback([&ctx, type, rid] {
    auto key = record_key_arg(*type, *rid);
    if (!key.ok()) return ctx.fail(key.error());
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto timeline = pipeline::record_timeline(**store, *key);
    if (!timeline.ok()) return ctx.fail(timeline.error());
    if (ctx.json) {
      std::printf("%s\n", pipeline::timeline_to_json(*key, *timeline).c_str());
      return;
    }
    if (timeline->empty()) std::printf("no events for %s/%s\n", type->c_str(), rid->c_str());
    for (const auto& t : *timeline) {
      std::string decision = t.decision;
      if (t.duplicates > 0) decision += " +" + std::to_string(t.duplicates) + " dup";
      print_event_line(t.event, decision, t.version);
    }
  });
}

}  // namespace backbone::cli
