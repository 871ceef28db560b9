// `backbone audit verify`: recomputes every fingerprint and every audit chain of the
// environment's store, as the reader role, and names the first entry that does not match.
// `backbone audit admin`: the administrators' acts (tokens made and revoked, dead letters
// replayed, provisioning), as the reader role.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backbone/error.h"
#include "cli/cli_context.h"
#include "server/audit_jobs.h"
#include "server/token_json.h"

namespace backbone::cli {

void register_audit(CLI::App& app, CliContext& ctx) {
  auto* audit = app.add_subcommand("audit", "Inspect the audit log");
  audit->require_subcommand(1);
  auto* verify = audit->add_subcommand(
      "verify", "Recompute every fingerprint and the hash chain; name the first bad entry");
  verify->callback([&ctx] {
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto report = verify_audit_chain(**store);
    if (!report.ok()) return ctx.fail(report.error());
    if (ctx.json) {
      nlohmann::json out = {{"env", ctx.env()}};
      out.update(server::audit_report_to_json(*report));
      std::printf("%s\n", out.dump().c_str());
    } else if (report->ok) {
      size_t chains = 0;
      for (const AuditHead& h : report->heads) chains += h.empty() ? 0 : 1;
      std::printf("%s: audit chain intact: %llu entries verified in %zu writer slot chain%s\n",
                  ctx.env().c_str(), static_cast<unsigned long long>(report->entries_checked),
                  chains, chains == 1 ? "" : "s");
    }
    if (!report->ok) {
      const Error e = make_error(Errc::kDataLoss, "audit entry " + report->first_bad_entry->str() +
                                                      " (position " +
                                                      std::to_string(report->first_bad_position) +
                                                      ") does not match: " + report->problem);
      if (ctx.json) {
        ctx.exit_status = exit_code(e.code);
      } else {
        ctx.fail(e);
      }
    }
  });

  auto* admin = audit->add_subcommand(
      "admin", "List the administrators' acts: who made or revoked a token, replayed, provisioned");
  auto after = std::make_shared<std::string>();
  auto limit = std::make_shared<size_t>(100);
  admin->add_option("--after", *after, "Only the acts after this one's id");
  admin->add_option("--limit", *limit, "At most this many (1 to 100000)")
      ->check(CLI::Range(1, 100000));
  admin->callback([&ctx, after, limit] {
    std::optional<EventId> from;
    if (!after->empty()) {
      auto id = EventId::parse(*after);
      if (!id.ok())
        return ctx.fail(make_error(Errc::kInvalidArgument, id.error().message, "--after"));
      from = *id;
    }
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto acts = (*store)->admin_actions(from, *limit);
    if (!acts.ok()) return ctx.fail(acts.error());
    if (ctx.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const AdminAction& a : *acts) out.push_back(server::admin_action_json(a));
      std::printf("%s\n", nlohmann::json{{"env", ctx.env()}, {"actions", out}}.dump().c_str());
      return;
    }
    std::printf("%-36s  %-24s  %-16s  %-38s  %s\n", "ID", "AT", "ACTION", "TARGET", "ACTOR");
    for (const AdminAction& a : *acts) {
      std::printf("%-36s  %-24s  %-16s  %-38s  %s\n", a.id.str().c_str(), a.at.to_rfc3339().c_str(),
                  a.action.c_str(), a.target.c_str(), a.actor.c_str());
    }
  });
}

}  // namespace backbone::cli
