// `backbone publish`: stores events given as JSON lines (stdin or --file), as the sync_worker
// role. Every line is validated before anything is written, and all lines are written in one
// transaction: bad input leaves the store unchanged.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "backbone/event_json.h"
#include "cli/cli_context.h"

namespace backbone::cli {
namespace {

void run_publish(CliContext& ctx, const std::string& file) {
  std::ifstream in_file;
  std::istream* in = &std::cin;
  if (!file.empty() && file != "-") {
    in_file.open(file);
    if (!in_file) return ctx.fail(make_error(Errc::kNotFound, "cannot read " + file));
    in = &in_file;
  }
  std::vector<EventDraft> drafts;
  std::vector<size_t> line_of;  // drafts[i] came from line line_of[i]
  std::string line;
  for (size_t n = 1; std::getline(*in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto draft = parse_event_draft(line);
    if (!draft.ok()) {
      Error e = draft.error();
      e.where = "line " + std::to_string(n) + (e.where.empty() ? "" : ": " + e.where);
      return ctx.fail(e);
    }
    drafts.push_back(std::move(*draft));
    line_of.push_back(n);
  }
  if (in->bad()) return ctx.fail(make_error(Errc::kUnavailable, "error reading input"));
  if (drafts.empty()) return ctx.fail(make_error(Errc::kInvalidArgument, "no events in input"));

  std::vector<Event> events;
  events.reserve(drafts.size());
  for (size_t i = 0; i < drafts.size(); ++i) {
    auto e = Event::create(drafts[i], EventIdGenerator::process(), SystemClock::instance());
    if (!e.ok()) {
      Error err = e.error();
      err.where =
          "line " + std::to_string(line_of[i]) + (err.where.empty() ? "" : ": " + err.where);
      return ctx.fail(err);
    }
    events.push_back(std::move(*e));
  }

  auto store = ctx.open_store(Role::kSyncWorker);
  if (!store.ok()) return ctx.fail(store.error());
  auto outcomes = (*store)->append(events);
  if (!outcomes.ok()) {
    Error err = outcomes.error();
    // The store names the item by its index; say which input line that was.
    if (err.item && err.item->index < line_of.size()) {
      err.where = "line " + std::to_string(line_of[err.item->index]);
      err.item.reset();
    }
    return ctx.fail(err);
  }
  if (ctx.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& o : *outcomes) {
      out.push_back(
          {{"id", o.id.str()}, {"fingerprint", o.fingerprint}, {"duplicate", o.duplicate}});
    }
    std::printf("%s\n", nlohmann::json{{"env", ctx.env()}, {"events", out}}.dump().c_str());
  } else {
    for (const auto& o : *outcomes) {
      std::printf("%s %s%s\n", o.id.str().c_str(), o.fingerprint.c_str(),
                  o.duplicate ? " duplicate" : "");
    }
  }
}

}  // namespace

void register_publish(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand(
      "publish",
      "Store events given as JSON lines on stdin or in a file; prints each id and fingerprint");
  auto file = std::make_shared<std::string>();
  cmd->add_option("-f,--file", *file, "Read events from this file instead of stdin ('-' = stdin)");
  cmd->callback([&ctx, file] { run_publish(ctx, *file); });
}

}  // namespace backbone::cli
