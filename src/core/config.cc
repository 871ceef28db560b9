#include "backbone/config.h"

#include "backbone/log.h"

#include <toml++/toml.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "backbone/default_config.h"
#include "backbone/event.h"

namespace backbone {
namespace {

Error bad_key(std::string_view source, const char* key, const std::string& why) {
  return make_error(Errc::kInvalidArgument, why, std::string(source) + ": " + key);
}

Result<void> apply_toml(Config& c, std::string_view text, std::string_view source) {
  toml::table t;
  try {
    t = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << e.description() << " at line " << e.source().begin.line << ", column "
        << e.source().begin.column;
    return make_error(Errc::kInvalidArgument, msg.str(), std::string(source));
  }
  static constexpr std::string_view kKeys[] = {"env",    "environments",   "store",      "broker",
                                               "listen", "pubsub_listen",  "durability", "topology",
                                               "tokens", "max_body_bytes", "max_batch"};
  for (const auto& [key, value] : t) {
    bool known = false;
    for (auto k : kKeys) known = known || key.str() == k;
    if (!known && !value.is_table()) {
      return bad_key(source, std::string(key.str()).c_str(), "unknown key");
    }
  }
  auto string_key = [&](const char* key, std::string& out) -> Result<void> {
    if (const auto* node = t.get(key)) {
      if (!node->is_string()) return bad_key(source, key, "must be a string");
      out = node->as_string()->get();
    }
    return {};
  };
  BACKBONE_TRY(string_key("env", c.env));
  BACKBONE_TRY(string_key("store", c.store));
  BACKBONE_TRY(string_key("broker", c.broker));
  BACKBONE_TRY(string_key("listen", c.listen));
  BACKBONE_TRY(string_key("pubsub_listen", c.pubsub_listen));
  BACKBONE_TRY(string_key("topology", c.topology));
  BACKBONE_TRY(string_key("tokens", c.tokens));
  for (auto [key, slot] :
       {std::pair{"max_body_bytes", &c.max_body_bytes}, std::pair{"max_batch", &c.max_batch}}) {
    if (const auto* node = t.get(key)) {
      auto v = node->value<int64_t>();
      if (!v || *v < 1) return bad_key(source, key, "must be a positive integer");
      *slot = static_cast<size_t>(*v);
    }
  }
  if (const auto* merge = t.get_as<toml::table>("merge")) {
    if (auto d = (*merge)["default_policy"].value<std::string>()) c.merge_default_policy = *d;
    if (const auto* pr = (*merge)["source_priority"].as_array()) {
      c.source_priority.clear();
      for (const auto& item : *pr) {
        if (!item.is_string()) return bad_key(source, "merge.source_priority", "must hold strings");
        c.source_priority.push_back(item.as_string()->get());
      }
    }
    if (const auto* pol = (*merge)["policies"].as_table()) {
      for (const auto& [k, v] : *pol) {
        if (!v.is_string()) return bad_key(source, "merge.policies", "values must be strings");
        c.merge_policies[std::string(k.str())] = v.as_string()->get();
      }
    }
  }
  if (const auto* cluster = t.get_as<toml::table>("cluster")) {
    for (const auto& [key, value] : *cluster) {
      if (key.str() != "buckets" && key.str() != "lease_ttl_ms") {
        return bad_key(source, ("cluster." + std::string(key.str())).c_str(), "unknown key");
      }
    }
    if (const auto* node = cluster->get("buckets")) {
      auto v = node->value<int64_t>();
      if (!v || *v < 1 || *v > 4096) {
        return bad_key(source, "cluster.buckets", "must be an integer from 1 to 4096");
      }
      c.cluster_buckets = static_cast<uint32_t>(*v);
    }
    if (const auto* node = cluster->get("lease_ttl_ms")) {
      auto v = node->value<int64_t>();
      if (!v || *v < 100 || *v > 600'000) {
        return bad_key(source, "cluster.lease_ttl_ms", "must be an integer from 100 to 600000");
      }
      c.lease_ttl_ms = *v;
    }
  }
  if (const auto* h = t.get_as<toml::table>("http")) {
    struct Key {
      const char* name;
      int64_t min, max;
      std::function<void(int64_t)> set;
    };
    HttpLimits& l = c.http;
    const Key keys[] = {
        {"header_timeout_ms", 100, 600'000, [&](int64_t v) { l.header_timeout_ms = v; }},
        {"body_timeout_ms", 100, 3'600'000, [&](int64_t v) { l.body_timeout_ms = v; }},
        {"idle_timeout_ms", 100, 3'600'000, [&](int64_t v) { l.idle_timeout_ms = v; }},
        {"max_connections", 1, 1'000'000, [&](int64_t v) { l.max_connections = v; }},
        {"max_connections_per_address", 1, 1'000'000,
         [&](int64_t v) { l.max_connections_per_address = v; }},
        {"workers", 1, 1024, [&](int64_t v) { l.workers = v; }},
    };
    for (const auto& [key, value] : *h) {
      const Key* k = nullptr;
      for (const Key& candidate : keys) {
        if (key.str() == candidate.name) k = &candidate;
      }
      const std::string name = "http." + std::string(key.str());
      if (k == nullptr) return bad_key(source, name.c_str(), "unknown key");
      auto v = value.value<int64_t>();
      if (!v || *v < k->min || *v > k->max) {
        return bad_key(
            source, name.c_str(),
            "must be an integer from " + std::to_string(k->min) + " to " + std::to_string(k->max));
      }
      k->set(*v);
    }
  }
  if (const auto* tls = t.get_as<toml::table>("tls")) {
    for (const auto& [key, value] : *tls) {
      const std::string name = "tls." + std::string(key.str());
      std::string* slot = key.str() == "cert_file"  ? &c.tls_cert_file
                          : key.str() == "key_file" ? &c.tls_key_file
                                                    : nullptr;
      if (slot == nullptr) return bad_key(source, name.c_str(), "unknown key");
      if (!value.is_string()) return bad_key(source, name.c_str(), "must be a string");
      *slot = value.as_string()->get();
    }
    if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
      return bad_key(source, "tls", "give both cert_file and key_file, or neither");
    }
  }
  if (const auto* log = t.get_as<toml::table>("log")) {
    for (const auto& [key, value] : *log) {
      const std::string name = "log." + std::string(key.str());
      if (key.str() != "format") return bad_key(source, name.c_str(), "unknown key");
      if (!value.is_string()) return bad_key(source, name.c_str(), "must be a string");
      c.log_format = value.as_string()->get();
    }
  }
  if (const auto* node = t.get("environments")) {
    const auto* arr = node->as_array();
    if (!arr || arr->empty()) return bad_key(source, "environments", "must be a non-empty array");
    c.environments.clear();
    for (const auto& item : *arr) {
      if (!item.is_string()) return bad_key(source, "environments", "must hold strings");
      c.environments.push_back(item.as_string()->get());
    }
  }
  if (const auto* node = t.get("durability")) {
    const auto* s = node->as_string();
    if (s && s->get() == "fsync") {
      c.durability = Durability::kFsync;
    } else if (s && s->get() == "relaxed") {
      c.durability = Durability::kRelaxed;
    } else {
      return bad_key(source, "durability", "must be \"fsync\" or \"relaxed\"");
    }
  }
  return {};
}

Result<void> validate(const Config& c) {
  if (auto f = log::parse_format(c.log_format); !f.ok()) {
    return make_error(Errc::kInvalidArgument, f.error().message, c.source + ": log.format");
  }
  for (const auto& e : c.environments) {
    if (!is_valid_name(e)) {
      return make_error(Errc::kInvalidArgument,
                        "environment \"" + e + "\" must match [a-z][a-z0-9_.-]{0,63}",
                        c.source + ": environments");
    }
  }
  return check_environment(c, c.env);
}

}  // namespace

EnvLookup process_env() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

Result<Config> parse_config(std::string_view text, std::string_view source_name) {
  Config c;
  BACKBONE_TRY(apply_toml(c, default_config::kToml, "built-in config"));
  c.source = std::string(source_name);
  BACKBONE_TRY(apply_toml(c, text, source_name));
  BACKBONE_TRY(validate(c));
  return c;
}

Result<Config> load_config(const std::optional<std::string>& file, const EnvLookup& env) {
  std::optional<std::string> path = file;
  if (!path) path = env("BACKBONE_CONFIG");
  if (!path && std::filesystem::exists("backbone.toml")) path = "backbone.toml";
  Config c;
  if (path) {
    std::ifstream in(*path);
    if (!in) return make_error(Errc::kNotFound, "cannot read config file " + *path);
    std::stringstream buf;
    buf << in.rdbuf();
    auto parsed = parse_config(buf.str(), *path);
    if (!parsed.ok()) return parsed.error();
    c = std::move(*parsed);
  } else {
    BACKBONE_TRY(apply_toml(c, default_config::kToml, "built-in config"));
    c.source = "built-in config";
  }
  if (auto v = env("BACKBONE_ENV")) c.env = *v;
  if (auto v = env("BACKBONE_STORE")) c.store = *v;
  if (auto v = env("BACKBONE_BROKER")) c.broker = *v;
  if (auto v = env("BACKBONE_LISTEN")) c.listen = *v;
  if (auto v = env("BACKBONE_PUBSUB_LISTEN")) c.pubsub_listen = *v;
  if (auto v = env("BACKBONE_LOG_FORMAT")) c.log_format = *v;
  BACKBONE_TRY(validate(c));
  return c;
}

Result<void> check_environment(const Config& c, std::string_view env) {
  for (const auto& e : c.environments) {
    if (e == env) return {};
  }
  std::string known;
  for (const auto& e : c.environments) known += (known.empty() ? "" : ", ") + e;
  return make_error(Errc::kNotFound,
                    "unknown environment \"" + std::string(env) + "\" (configured: " + known + ")");
}

Result<std::string> store_url_for(const Config& c, std::string_view env) {
  BACKBONE_TRY(check_environment(c, env));
  std::string url = c.store;
  const std::string_view placeholder = "{env}";
  for (size_t pos; (pos = url.find(placeholder)) != std::string::npos;) {
    url.replace(pos, placeholder.size(), env);
  }
  return url;
}

bool is_production_environment(std::string_view env) {
  if (env == "production" || env == "prod") return true;
  for (std::string_view prefix : {"production-", "prod-", "prod_"}) {
    if (env.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace backbone
