// `backbone db grant` and `backbone db check-grants`: the roles of SPEC §2 on a PostgreSQL or
// MySQL/MariaDB store (src/store/sql/role_grants.h). The store URL is the environment's (or
// --store); its user and password are the administrator's. Role passwords come from
// BACKBONE_ROLE_PASSWORD_<ROLE>, never from the command line.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "store/open/store_open.h"
#include "store/sql/role_grants.h"

namespace backbone::cli {
namespace {

void print_grant_table(const std::vector<sql::GrantProbe>& probes) {
  // Rows: probes; columns: roles. "yes"/"no" as the server answered; "!" where SPEC §2 disagrees.
  std::vector<std::string> names;
  std::map<std::pair<std::string, Role>, const sql::GrantProbe*> cell;
  for (const auto& p : probes) {
    if (std::find(names.begin(), names.end(), p.probe) == names.end()) names.push_back(p.probe);
    cell[{p.probe, p.role}] = &p;
  }
  const Role roles[] = {Role::kMigrator, Role::kSyncWorker, Role::kMergeWorker, Role::kReader};
  std::printf("%-32s", "");
  for (Role r : roles) std::printf(" %-13s", role_name(r));
  std::printf("\n");
  for (const std::string& n : names) {
    std::printf("%-32s", n.c_str());
    for (Role r : roles) {
      const auto* p = cell[{n, r}];
      std::string text = p ? (p->allowed ? "yes" : "no") : "-";
      if (p && p->allowed != p->expected) text += " !";
      std::printf(" %-13s", text.c_str());
    }
    std::printf("\n");
  }
}

}  // namespace

void register_db(CLI::App& app, CliContext& ctx) {
  auto* db = app.add_subcommand("db", "Database roles of a PostgreSQL or MySQL/MariaDB store");
  db->require_subcommand(1);

  auto* grant = db->add_subcommand(
      "grant", "Create or update the four roles with exactly their privileges (idempotent)");
  grant->callback([&ctx] {
    auto url = store_url_for(ctx.config, ctx.env());
    if (!url.ok()) return ctx.fail(url.error());
    auto log = sql::grant_roles(*url, server_store_dialect(*url));
    if (!log.ok()) return ctx.fail(log.error());
    if (ctx.json) {
      std::printf("%s\n", nlohmann::json({{"env", ctx.env()}, {"steps", *log}}).dump().c_str());
      return;
    }
    for (const std::string& line : *log) std::printf("%s\n", line.c_str());
  });

  auto* check = db->add_subcommand(
      "check-grants",
      "Log in as each role, try what it may and may not do, print the table; exit 1 on any "
      "difference from SPEC §2");
  check->callback([&ctx] {
    auto url = store_url_for(ctx.config, ctx.env());
    if (!url.ok()) return ctx.fail(url.error());
    auto probes = sql::check_grants(*url, server_store_dialect(*url));
    if (!probes.ok()) return ctx.fail(probes.error());
    size_t wrong = 0;
    for (const auto& p : *probes) wrong += p.allowed != p.expected;
    if (ctx.json) {
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& p : *probes) {
        rows.push_back({{"role", role_name(p.role)},
                        {"probe", p.probe},
                        {"expected", p.expected},
                        {"allowed", p.allowed},
                        {"refusal", p.refusal}});
      }
      std::printf("%s\n", nlohmann::json({{"ok", wrong == 0}, {"probes", rows}}).dump().c_str());
    } else {
      print_grant_table(*probes);
      std::printf("%s\n",
                  wrong == 0
                      ? "every role has exactly the privileges of SPEC §2"
                      : (std::to_string(wrong) + " cell(s) marked ! differ from SPEC §2").c_str());
    }
    if (wrong != 0) ctx.exit_status = 1;
  });
}

}  // namespace backbone::cli
