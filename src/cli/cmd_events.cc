// `backbone events get ID` and `backbone events history TYPE ID`: read events, as the reader
// role.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "backbone/event_json.h"
#include "cli/cli_context.h"

namespace backbone::cli {
namespace {

void print_event_line(const StoredEvent& s) {
  const Event& e = s.event;
  std::printf("%s  %s  v%llu->  %-12s %s%s\n", e.timestamp().to_rfc3339().c_str(),
              e.id().str().c_str(), static_cast<unsigned long long>(e.base_version()),
              e.source().c_str(), e.changes().c_str(), s.processed ? "" : "  (unprocessed)");
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
      print_event_line(*ev);
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
    auto list = (*store)->history(*key);
    if (!list.ok()) return ctx.fail(list.error());
    if (ctx.json) {
      std::string out = "[";
      for (size_t i = 0; i < list->size(); ++i) {
        if (i) out += ",";
        out += event_to_json((*list)[i].event, (*list)[i].processed);
      }
      std::printf("%s]\n", out.c_str());
    } else {
      if (list->empty()) std::printf("no events for %s/%s\n", type->c_str(), rid->c_str());
      for (const auto& s : *list) print_event_line(s);
    }
  });
}

}  // namespace backbone::cli
