#include "cli/cli_context.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "auth/token_registry.h"

#include "backbone/event.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "backbone/error.h"

namespace backbone::cli {

Result<void> CliContext::load() {
  auto c = load_config(config_file, process_env());
  if (!c.ok()) return c.error();
  config = std::move(*c);
  if (env_flag) config.env = *env_flag;
  if (store_flag) config.store = *store_flag;
  if (broker_flag) config.broker = *broker_flag;
  // The environment is the user's input here: an unknown one is bad input (exit 2), where the
  // HTTP API answers a path naming one with 404.
  if (auto known = check_environment(config, config.env); !known.ok()) {
    Error e = known.error();
    e.code = Errc::kInvalidArgument;
    e.where = env_flag ? "--env" : "env";
    return e;
  }
  return {};
}

Result<std::unique_ptr<EventStore>> CliContext::open_store(Role role) const {
  return open_store(role, config.env);
}

Result<std::unique_ptr<EventStore>> CliContext::open_store(Role role,
                                                           const std::string& env) const {
  auto url = store_url_for(config, env);
  if (!url.ok()) return url.error();
  StoreOptions opts;
  opts.url = *url;
  opts.role = role;
  opts.durability = config.durability;
  return EventStore::open(opts);
}

std::string CliContext::actor() {
  std::string user = "?";
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) {
    user = pw->pw_name;
  } else if (const char* u = std::getenv("USER"); u != nullptr) {
    user = u;
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  return "cli " + user + "@" + host;
}

Result<void> CliContext::record_admin(const std::string& env, const std::string& action,
                                      const std::string& target, std::optional<std::string> detail,
                                      const char* done) const {
  auto store = open_store(Role::kMigrator, env);
  if (!store.ok()) return store.error();
  return auth::record_admin_act(
      **store, {SystemClock::instance().now(), actor(), action, target, std::move(detail)}, done);
}

Result<std::unique_ptr<Broker>> CliContext::open_broker() const {
  BrokerOptions opts;
  opts.url = config.broker;
  opts.buckets = config.cluster_buckets;
  return Broker::open(opts);
}

Result<Topology> CliContext::topology() const { return Topology::load(config.topology); }

Result<RecordKey> record_key_arg(const std::string& record_type, const std::string& record_id) {
  if (!is_valid_name(record_type)) {
    return make_error(Errc::kInvalidArgument, "must match [a-z][a-z0-9_.-]{0,63}", "record_type");
  }
  if (!is_valid_record_id(record_id)) {
    return make_error(Errc::kInvalidArgument, "must be 1-191 bytes of printable UTF-8",
                      "record_id");
  }
  return RecordKey{record_type, record_id};
}

void CliContext::fail(const Error& error) {
  exit_status = exit_code(error.code);
  if (json) {
    nlohmann::json body = {
        {"error",
         {{"code", errc_name(error.code)},
          {"message", error.message},
          {"details", error.location().empty() ? nlohmann::json(nullptr)
                                               : nlohmann::json(error.location())}}}};
    std::fprintf(stderr, "%s\n", body.dump().c_str());
  } else {
    std::fprintf(stderr, "backbone: error: %s\n", error.describe().c_str());
  }
}

}  // namespace backbone::cli
