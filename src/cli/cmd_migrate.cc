// `backbone migrate`: applies pending schema migrations to the environment's store, as the
// migrator role. Running it again applies nothing.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "store/store_url.h"

namespace backbone::cli {

void register_migrate(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("migrate", "Create or upgrade the environment's event store");
  cmd->callback([&ctx] {
    auto store = ctx.open_store(Role::kMigrator);
    if (!store.ok()) return ctx.fail(store.error());
    auto applied = (*store)->migrate();
    if (!applied.ok()) return ctx.fail(applied.error());
    auto version = (*store)->schema_version();
    if (!version.ok()) return ctx.fail(version.error());
    auto url = store_url_for(ctx.config, ctx.env());
    if (ctx.json) {
      nlohmann::json out = {{"env", ctx.env()},
                            {"store", redact_store_url(*url)},
                            {"applied", *applied},
                            {"schema_version", *version}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("%s: applied %d migration(s); schema version %d (%s)\n", ctx.env().c_str(),
                  *applied, *version, redact_store_url(*url).c_str());
    }
  });
}

}  // namespace backbone::cli
