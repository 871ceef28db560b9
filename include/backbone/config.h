// Config: backbone.toml plus the BACKBONE_* environment variables (SPEC §6).
//
// Precedence, lowest first: the default config built into the binary (config/backbone.toml),
// then a file (BACKBONE_CONFIG, or ./backbone.toml when present, or an explicit path), then the
// variables BACKBONE_ENV, BACKBONE_STORE, BACKBONE_BROKER, BACKBONE_LISTEN,
// BACKBONE_PUBSUB_LISTEN and BACKBONE_LOG_FORMAT. Command-line flags are applied by the CLI on
// top.
//
// Thread-safety: plain values and pure functions (load_config reads the file and environment).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backbone/durability.h"
#include "backbone/result.h"

namespace backbone {

// [http]: what one client may hold of the HTTP API (src/http/http_listener.h).
struct HttpLimits {
  int64_t header_timeout_ms = 10'000;  // a request's line and headers, from its first byte
  int64_t body_timeout_ms = 30'000;    // its body; and an answer's write
  int64_t idle_timeout_ms = 30'000;    // a kept-alive connection between requests
  size_t max_connections = 4096;
  size_t max_connections_per_address = 512;
  size_t workers = 16;  // threads that run requests (reads and writes need none)
};

struct Config {
  std::string env;
  std::vector<std::string> environments;
  std::string store;  // a URL template; "{env}" is replaced by the environment's name
  std::string broker;
  std::string listen;
  std::string pubsub_listen;
  std::string topology;  // a topology file; empty: the built-in config/topology.toml
  std::string tokens;    // the bearer token file (hashes only)
  size_t max_body_bytes = 1 << 20;
  size_t max_batch = 1000;
  HttpLimits http;
  // [tls]: a PEM certificate chain and its private key for both listeners (the HTTP API and
  // the Pub/Sub front); both empty: plaintext, allowed only on loopback addresses unless
  // `serve --insecure-listen` (doc/http_server.md).
  std::string tls_cert_file;
  std::string tls_key_file;
  // [log] format: "text", "logfmt" or "json" (backbone/log.h; BACKBONE_LOG_FORMAT).
  std::string log_format = "text";
  // [merge]: conflict policies ("reject", "last_writer_wins", "source_priority").
  std::string merge_default_policy = "reject";
  std::map<std::string, std::string> merge_policies;  // record type -> policy
  std::vector<std::string> source_priority;           // highest first
  Durability durability = Durability::kFsync;
  // [cluster] (doc/scale_out.md): the buckets of an environment's work (recorded in its store by
  // the first process), and how long a silent process keeps its buckets.
  uint32_t cluster_buckets = 64;
  int64_t lease_ttl_ms = 10'000;
  std::string source;  // where the config came from, for messages
};

// Looks up an environment variable; returns nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;
EnvLookup process_env();

// Loads the configuration. `file`: an explicit path (must exist), or nullopt for the default
// search. Errors name the file and the key.
Result<Config> load_config(const std::optional<std::string>& file, const EnvLookup& env);
// Parses TOML text over the built-in defaults (for tests).
Result<Config> parse_config(std::string_view toml_text, std::string_view source_name);

// The store URL of environment `env`: kNotFound if `env` is not configured.
Result<std::string> store_url_for(const Config& config, std::string_view env);
// Whether `env` is shown as production (the console's red banner): "production", "prod", or a
// name that begins with "production-", "prod-" or "prod_".
bool is_production_environment(std::string_view env);
// Checks that `env` is one of config.environments (kNotFound otherwise).
Result<void> check_environment(const Config& config, std::string_view env);

}  // namespace backbone
