// CliContext: what every subcommand shares — the global flags, the loaded configuration, and
// the one place where errors become stderr lines and exit codes.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backbone/broker.h"
#include "backbone/config.h"
#include "backbone/event_store.h"
#include "backbone/record_key.h"
#include "backbone/result.h"
#include "backbone/topology.h"

namespace CLI {
class App;
}

namespace backbone::cli {

struct CliContext {
  // Global flags.
  std::optional<std::string> config_file;
  std::optional<std::string> env_flag;
  std::optional<std::string> store_flag;
  std::optional<std::string> broker_flag;
  bool json = false;

  Config config;
  int exit_status = 0;

  // Loads the config; applies the flags. Called once the command line is parsed.
  Result<void> load();
  // The environment the command acts on (--env, else BACKBONE_ENV, else the config's).
  const std::string& env() const { return config.env; }
  // Opens the current environment's store as `role`.
  Result<std::unique_ptr<EventStore>> open_store(Role role) const;
  // Opens environment `env`'s store as `role`.
  Result<std::unique_ptr<EventStore>> open_store(Role role, const std::string& env) const;
  // Who runs this command, in the admin audit: "cli <user>@<host>".
  static std::string actor();
  // Writes an act of actor() to `env`'s admin audit, as the migrator, after the act (`done`
  // says what held if the record fails).
  Result<void> record_admin(const std::string& env, const std::string& action,
                            const std::string& target, std::optional<std::string> detail,
                            const char* done) const;
  // Opens the broker (shared by all environments).
  Result<std::unique_ptr<Broker>> open_broker() const;
  // The topology (config/topology.toml unless the config names a file).
  Result<Topology> topology() const;

  // Prints "backbone: error: ..." (or a JSON error with --json) to stderr and sets the status.
  void fail(const Error& error);
};

// A record named on the command line: kInvalidArgument naming `record_type` or `record_id`.
Result<RecordKey> record_key_arg(const std::string& record_type, const std::string& record_id);

// Each subcommand registers itself on the app; its callback runs the command.
void register_migrate(CLI::App& app, CliContext& ctx);
void register_publish(CLI::App& app, CliContext& ctx);
void register_events(CLI::App& app, CliContext& ctx);
void register_audit(CLI::App& app, CliContext& ctx);
void register_version(CLI::App& app, CliContext& ctx);
void register_provision(CLI::App& app, CliContext& ctx);
void register_topology(CLI::App& app, CliContext& ctx);
void register_serve(CLI::App& app, CliContext& ctx);
void register_token(CLI::App& app, CliContext& ctx);
void register_dlq(CLI::App& app, CliContext& ctx);
void register_stress(CLI::App& app, CliContext& ctx);
void register_records(CLI::App& app, CliContext& ctx);
void register_db(CLI::App& app, CliContext& ctx);
void register_cluster(CLI::App& app, CliContext& ctx);

}  // namespace backbone::cli
