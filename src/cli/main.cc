// backbone: the command-line entry point (SPEC §6). Each subcommand lives in its own cmd_*.cc.
#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "backbone/log.h"
#include "cli/cli_context.h"

namespace {

// "backbone dlq" for the subcommand `app` names.
std::string command_path(const CLI::App* app) {
  std::string path;
  for (; app != nullptr; app = app->get_parent()) {
    path = (app->get_parent() ? app->get_name() : std::string("backbone")) +
           (path.empty() ? "" : " " + path);
  }
  return path;
}

// What a failed parse says, naming the command at fault: an unknown command as such (CLI11 says
// only that a subcommand is required), and the commands there are.
std::string parse_error_message(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App* at = &app;
  for (auto subs = at->get_subcommands(); !subs.empty(); subs = at->get_subcommands()) {
    at = subs.front();
  }
  std::string message = e.what();
  if (e.get_name() == "RequiredError" && !at->get_subcommands({}).empty()) {
    std::string names;
    for (const CLI::App* sub : at->get_subcommands({})) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    // With fallthrough, a word that named no subcommand ends up with the top-level app.
    std::string unknown;
    for (const std::string& word : app.remaining()) {
      if (!word.empty() && word[0] != '-') {
        unknown = word;
        break;
      }
    }
    message = unknown.empty() ? command_path(at) + " needs a command: one of " + names
                              : "unknown command \"" + unknown + "\" for " + command_path(at) +
                                    "; the commands are " + names;
  }
  return message + " (see " + command_path(at) + " --help)";
}

}  // namespace

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
  app.add_flag("-v,--verbose", verbose,
               "Log each merge decision, conflict, dead letter and replay (stderr)");
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "Log only warnings and errors (no access log)");
  std::string log_format;
  app.add_option("--log-format", log_format,
                 "The log's form: text, logfmt or json (default: [log] format, "
                 "BACKBONE_LOG_FORMAT)");

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
    if (auto r = ctx.load(); !r.ok()) {
      ctx.fail(r.error());
      throw CLI::RuntimeError(ctx.exit_status);
    }
    // Logs go to stderr: stdout is the commands' output. The format was checked by load().
    if (!log_format.empty()) ctx.config.log_format = log_format;
    auto format = backbone::log::parse_format(ctx.config.log_format);
    if (!format.ok()) {
      backbone::Error e = format.error();
      e.where = "--log-format";
      ctx.fail(e);
      throw CLI::RuntimeError(ctx.exit_status);
    }
    using backbone::log::Level;
    backbone::log::configure(*format, verbose ? Level::kDebug
                                      : quiet ? Level::kWarn
                                              : Level::kInfo);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (ctx.exit_status != 0) return ctx.exit_status;  // already reported
    if (e.get_exit_code() == 0) return app.exit(e);    // --help
    // Reported as every other error, in JSON when --json was given (CLI11 may have stopped
    // before it reached the flag).
    for (int i = 1; i < argc; ++i) ctx.json = ctx.json || std::string_view(argv[i]) == "--json";
    ctx.fail(backbone::make_error(backbone::Errc::kInvalidArgument, parse_error_message(app, e)));
    return ctx.exit_status;
  }
  return ctx.exit_status;
}
