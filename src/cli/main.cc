// backbone: the command-line entry point (SPEC §6). Each subcommand lives in its own cmd_*.cc.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/cli_context.h"

int main(int argc, char** argv) {
  using backbone::cli::CliContext;
  CliContext ctx;
  CLI::App app{"backbone: an immutable, auditable event store with a per-environment pipeline"};
  app.set_help_all_flag("--help-all", "Show the help of every subcommand");
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand
  app.add_option("--config", ctx.config_file,
                 "Configuration file (default: ./backbone.toml, "
                 "else the built-in config)");
  app.add_option("--env", ctx.env_flag,
                 "Environment to act on (default: BACKBONE_ENV, else the "
                 "config's env)");
  app.add_option("--store", ctx.store_flag, "Store URL template, overriding BACKBONE_STORE");
  app.add_option("--broker", ctx.broker_flag, "Broker URL, overriding BACKBONE_BROKER");
  app.add_flag("--json", ctx.json, "Machine-readable output");
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log progress to stderr");

  backbone::cli::register_migrate(app, ctx);
  backbone::cli::register_publish(app, ctx);
  backbone::cli::register_events(app, ctx);
  backbone::cli::register_audit(app, ctx);
  backbone::cli::register_version(app, ctx);
  backbone::cli::register_provision(app, ctx);
  backbone::cli::register_topology(app, ctx);
  backbone::cli::register_serve(app, ctx);
  backbone::cli::register_token(app, ctx);
  backbone::cli::register_dlq(app, ctx);
  backbone::cli::register_stress(app, ctx);
  backbone::cli::register_records(app, ctx);
  backbone::cli::register_db(app, ctx);
  backbone::cli::register_cluster(app, ctx);

  app.parse_complete_callback([&] {
    spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
    if (auto r = ctx.load(); !r.ok()) {
      ctx.fail(r.error());
      throw CLI::RuntimeError(ctx.exit_status);
    }
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (ctx.exit_status != 0) return ctx.exit_status;  // already reported
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return ctx.exit_status;
}
