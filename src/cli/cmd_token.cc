// `backbone token create|list|revoke`: the bearer tokens of `serve`, kept in the environment's
// store as their hashes (doc/tokens.md). create prints the token once; list shows every token
// of --env (never the token, only its id: the first 12 digits of its hash); revoke takes an id
// or a name. A token made or revoked here counts on every `serve` of the environment within
// about a second.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "auth/token_registry.h"
#include "cli/cli_context.h"
#include "server/token_json.h"

namespace backbone::cli {
namespace {

// "30d", "12h", "90m", "45s" as microseconds; kInvalidArgument otherwise.
Result<int64_t> parse_ttl(const std::string& text) {
  auto bad = [&] {
    return make_error(
        Errc::kInvalidArgument,
        "a ttl is a whole number and a unit: 30d, 12h, 90m or 45s, not \"" + text + "\"", "ttl");
  };
  if (text.size() < 2) return bad();
  const std::string digits = text.substr(0, text.size() - 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      digits.size() > 9) {
    return bad();
  }
  const int64_t n = std::stoll(digits);
  int64_t unit = 0;
  switch (text.back()) {
    case 'd':
      unit = 86'400'000'000;
      break;
    case 'h':
      unit = 3'600'000'000;
      break;
    case 'm':
      unit = 60'000'000;
      break;
    case 's':
      unit = 1'000'000;
      break;
    default:
      return bad();
  }
  if (n <= 0 || n > 36'500 * (86'400'000'000 / unit)) return bad();  // up to 100 years
  return n * unit;
}

std::string optional_time(const std::optional<Timestamp>& t) {
  return t ? t->to_rfc3339() : std::string("-");
}

}  // namespace

void register_token(CLI::App& app, CliContext& ctx) {
  auto* token = app.add_subcommand("token", "Manage the bearer tokens of `serve`");
  token->require_subcommand(1);

  auto* create =
      token->add_subcommand("create", "Make a token for --env with --roles; print it once");
  auto roles = std::make_shared<std::vector<std::string>>();
  auto name = std::make_shared<std::string>("cli");
  auto ttl = std::make_shared<std::string>();
  create->add_option("--roles", *roles, "publish, subscribe, read, admin, pipeline")
      ->delimiter(',')
      ->required();
  create->add_option("--name", *name, "A name to tell the token by");
  create->add_option("--ttl", *ttl, "Expire after this long: 30d, 12h, 90m, 45s (default never)");
  create->callback([&ctx, roles, name, ttl] {
    std::optional<int64_t> ttl_us;
    if (!ttl->empty()) {
      auto parsed = parse_ttl(*ttl);
      if (!parsed.ok()) return ctx.fail(parsed.error());
      ttl_us = *parsed;
    }
    auto store = ctx.open_store(Role::kMigrator);
    if (!store.ok()) return ctx.fail(store.error());
    // A new environment's first token may come before its first `serve`.
    if (auto m = (*store)->migrate(); !m.ok()) return ctx.fail(m.error());
    auto made = auth::create_token(**store, ctx.env(), *name, *roles, ttl_us,
                                   SystemClock::instance().now(), CliContext::actor());
    if (!made.ok()) return ctx.fail(made.error());
    if (ctx.json) {
      nlohmann::json out = server::token_json(made->row);
      out["env"] = ctx.env();
      out["token"] = made->token;
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("%s\n", made->token.c_str());
    }
  });

  auto* list =
      token->add_subcommand("list", "List the tokens of --env (not the tokens themselves)");
  list->callback([&ctx] {
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    auto all = (*store)->tokens();
    if (!all.ok()) return ctx.fail(all.error());
    if (ctx.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const StoredToken& t : *all) out.push_back(server::token_json(t));
      std::printf("%s\n", nlohmann::json{{"env", ctx.env()}, {"tokens", out}}.dump().c_str());
      return;
    }
    std::printf("%-12s  %-20s  %-28s  %-20s  %-20s  %-20s  %s\n", "ID", "NAME", "ROLES", "CREATED",
                "EXPIRES", "LAST USED", "REVOKED");
    for (const StoredToken& t : *all) {
      std::string roles_text;
      for (const std::string& r : t.roles) roles_text += (roles_text.empty() ? "" : ",") + r;
      std::printf("%-12s  %-20s  %-28s  %-20s  %-20s  %-20s  %s\n",
                  auth::token_id(t.sha256).c_str(), t.name.c_str(), roles_text.c_str(),
                  t.created_at.to_rfc3339().substr(0, 19).c_str(),
                  optional_time(t.expires_at).substr(0, 19).c_str(),
                  optional_time(t.last_used_at).substr(0, 19).c_str(),
                  optional_time(t.revoked_at).substr(0, 19).c_str());
    }
  });

  auto* revoke = token->add_subcommand("revoke", "Revoke a token of --env, by its id or name");
  auto which = std::make_shared<std::string>();
  revoke->add_option("token", *which, "The token's id (backbone token list) or its name")
      ->required();
  revoke->callback([&ctx, which] {
    auto store = ctx.open_store(Role::kMigrator);
    if (!store.ok()) return ctx.fail(store.error());
    auto revoked =
        auth::revoke_token(**store, *which, SystemClock::instance().now(), CliContext::actor());
    if (!revoked.ok()) return ctx.fail(revoked.error());
    if (ctx.json) {
      nlohmann::json out = server::token_json(*revoked);
      out["env"] = ctx.env();
      out["revoked"] = !revoked->revoked_at.has_value();
      std::printf("%s\n", out.dump().c_str());
    } else if (revoked->revoked_at) {
      std::printf("token %s (%s) was revoked already, at %s\n",
                  auth::token_id(revoked->sha256).c_str(), revoked->name.c_str(),
                  revoked->revoked_at->to_rfc3339().c_str());
    } else {
      std::printf("revoked token %s (%s)\n", auth::token_id(revoked->sha256).c_str(),
                  revoked->name.c_str());
    }
  });
}

}  // namespace backbone::cli
