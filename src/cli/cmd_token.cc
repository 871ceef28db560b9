// `backbone token create --env E --roles publish,read`: makes a bearer token for `serve`,
// scoped to one environment and to roles, and prints it once; only its hash is kept.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "auth/tokens.h"
#include "cli/cli_context.h"

namespace backbone::cli {

void register_token(CLI::App& app, CliContext& ctx) {
  auto* token = app.add_subcommand("token", "Manage the bearer tokens of `serve`");
  token->require_subcommand(1);
  auto* create =
      token->add_subcommand("create", "Make a token for --env with --roles; print it once");
  auto roles = std::make_shared<std::vector<std::string>>();
  auto name = std::make_shared<std::string>("cli");
  create->add_option("--roles", *roles, "publish, subscribe, read, admin")
      ->delimiter(',')
      ->required();
  create->add_option("--name", *name, "A name to tell the token by");
  create->callback([&ctx, roles, name] {
    auto store =
        auth::TokenStore::open(ctx.config.tokens.empty() ? "var/tokens.json" : ctx.config.tokens);
    if (!store.ok()) return ctx.fail(store.error());
    auto t = store->create(*name, ctx.env(), *roles);
    if (!t.ok()) return ctx.fail(t.error());
    if (ctx.json) {
      std::printf(
          "%s\n",
          nlohmann::json{{"env", ctx.env()}, {"roles", *roles}, {"token", *t}}.dump().c_str());
    } else {
      std::printf("%s\n", t->c_str());
    }
  });
}

}  // namespace backbone::cli
