#include "backbone/topology.h"

#include <toml++/toml.h>
#include <cmath>
#include <sstream>

#include "backbone/default_topology.h"

namespace backbone {
namespace {

constexpr TopicFamily kFamilies[] = {TopicFamily::kRaw, TopicFamily::kMerged, TopicFamily::kError,
                                     TopicFamily::kDlq};
constexpr std::string_view kPlaceholder = "{env}";

std::string expand(std::string_view name, std::string_view env) {
  std::string out(name);
  for (size_t pos; (pos = out.find(kPlaceholder)) != std::string::npos;) {
    out.replace(pos, kPlaceholder.size(), env);
  }
  return out;
}

std::optional<TopicFamily> family_named(std::string_view name) {
  for (TopicFamily f : kFamilies) {
    if (name == topic_family_name(f)) return f;
  }
  return std::nullopt;
}

Error bad(std::string_view source, const std::string& key, const std::string& why) {
  return make_error(Errc::kInvalidArgument, why, std::string(source) + ": " + key);
}

// Seconds (integer or fractional) as microseconds.
std::optional<int64_t> seconds_us(const toml::node* node) {
  if (!node) return std::nullopt;
  if (auto i = node->value<int64_t>()) return *i * kSecond;
  if (auto d = node->value<double>()) return static_cast<int64_t>(std::llround(*d * kSecond));
  return std::nullopt;
}

}  // namespace

const char* topic_family_name(TopicFamily family) {
  switch (family) {
    case TopicFamily::kRaw:
      return "raw";
    case TopicFamily::kMerged:
      return "merged";
    case TopicFamily::kError:
      return "error";
    case TopicFamily::kDlq:
      return "dlq";
  }
  return "raw";
}

Result<Topology> Topology::parse(std::string_view text, std::string_view source) {
  toml::table t;
  try {
    t = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << e.description() << " at line " << e.source().begin.line;
    return make_error(Errc::kInvalidArgument, msg.str(), std::string(source));
  }
  Topology topo;
  topo.project_ = t["project"].value_or(std::string());
  if (topo.project_.empty()) return bad(source, "project", "is required");
  for (TopicFamily f : kFamilies) {
    const std::string key = std::string("topics.") + topic_family_name(f);
    auto name = t["topics"][topic_family_name(f)].value<std::string>();
    if (!name) return bad(source, key, "is required");
    if (name->find(kPlaceholder) == std::string::npos) {
      return bad(source, key, "must contain {env}, so that environments never share a topic");
    }
    BACKBONE_TRY(validate_resource_name(expand(*name, "sandbox"), key.c_str()));
    topo.topics_[static_cast<int>(f)] = *name;
  }
  const toml::array* subs = t["subscriptions"].as_array();
  if (!subs) return bad(source, "subscriptions", "is required");
  for (size_t i = 0; i < subs->size(); ++i) {
    const std::string key = "subscriptions[" + std::to_string(i) + "]";
    const toml::table* s = (*subs)[i].as_table();
    if (!s) return bad(source, key, "must be a table");
    TopologySubscription ts;
    ts.name = (*s)["name"].value_or(std::string());
    if (ts.name.find(kPlaceholder) == std::string::npos) {
      return bad(source, key + ".name", "must contain {env}");
    }
    auto family = family_named((*s)["topic"].value_or(std::string()));
    if (!family) return bad(source, key + ".topic", "must be raw, merged, error or dlq");
    ts.topic = *family;
    ts.consumer = (*s)["consumer"].value_or(std::string());
    ts.role = (*s)["role"].value_or(std::string());
    for (const auto& other : topo.subs_) {
      if (!ts.role.empty() && other.role == ts.role) {
        return bad(source, key + ".role", "\"" + ts.role + "\" is taken by another subscription");
      }
    }
    SubscriptionConfig& p = ts.policy;
    p.ordered = (*s)["ordered"].value_or(false);
    if (auto us = seconds_us((*s)["ack_deadline_seconds"].node())) p.ack_deadline_us = *us;
    if (const toml::table* r = (*s)["retry"].as_table()) {
      auto min = seconds_us((*r)["min_backoff_seconds"].node());
      auto max = seconds_us((*r)["max_backoff_seconds"].node());
      if (!min || !max)
        return bad(source, key + ".retry", "needs min_backoff_seconds and max_backoff_seconds");
      p.retry = RetryPolicy{*min, *max};
    }
    if (const toml::table* d = (*s)["dead_letter"].as_table()) {
      auto dl = family_named((*d)["topic"].value_or(std::string()));
      if (!dl) return bad(source, key + ".dead_letter.topic", "must be raw, merged, error or dlq");
      ts.dead_letter = *dl;
      p.dead_letter = DeadLetterPolicy{"", (*d)["max_delivery_attempts"].value_or(5)};
    }
    if (auto days = (*s)["retention_days"].value<int64_t>()) p.retention_us = *days * kDay;
    // Check the policies as they will be provisioned.
    SubscriptionConfig probe = p;
    probe.name = expand(ts.name, "sandbox");
    probe.topic = expand(topo.topics_[static_cast<int>(ts.topic)], "sandbox");
    if (probe.dead_letter)
      probe.dead_letter->topic = expand(topo.topics_[static_cast<int>(*ts.dead_letter)], "sandbox");
    if (auto v = validate_subscription_config(probe); !v.ok()) {
      return bad(source, key + "." + v.error().location(), v.error().message);
    }
    topo.subs_.push_back(std::move(ts));
  }
  return topo;
}

const Topology& Topology::built_in() {
  static const Topology topo = [] {
    auto t = parse(default_topology::kToml, "built-in topology");
    BACKBONE_ASSERT(t.ok());
    return std::move(t).value();
  }();
  return topo;
}

std::string Topology::topic_name(TopicFamily family, std::string_view env) const {
  return expand(topics_[static_cast<int>(family)], env);
}

std::vector<TopicConfig> Topology::topics(std::string_view env) const {
  std::vector<TopicConfig> out;
  for (TopicFamily f : kFamilies) {
    out.push_back(
        {topic_name(f, env),
         {{std::string(kLabelEnv), std::string(env)}, {std::string(kLabelManagedBy), "backbone"}}});
  }
  return out;
}

std::vector<SubscriptionConfig> Topology::subscriptions(std::string_view env) const {
  std::vector<SubscriptionConfig> out;
  for (const TopologySubscription& ts : subs_) {
    SubscriptionConfig c = ts.policy;
    c.name = expand(ts.name, env);
    c.topic = topic_name(ts.topic, env);
    if (c.dead_letter) c.dead_letter->topic = topic_name(*ts.dead_letter, env);
    c.labels = {{std::string(kLabelEnv), std::string(env)},
                {std::string(kLabelManagedBy), "backbone"}};
    out.push_back(std::move(c));
  }
  return out;
}

Result<SubscriptionConfig> Topology::subscription_for(std::string_view role,
                                                      std::string_view env) const {
  const auto all = subscriptions(env);
  for (size_t i = 0; i < subs_.size(); ++i) {
    if (subs_[i].role == role) return all[i];
  }
  return make_error(Errc::kNotFound,
                    "the topology has no subscription with role \"" + std::string(role) + "\"");
}

std::optional<std::string> Topology::environment_of(std::string_view name,
                                                    std::span<const std::string> envs) const {
  for (const std::string& env : envs) {
    for (TopicFamily f : kFamilies) {
      if (topic_name(f, env) == name) return env;
    }
    for (const TopologySubscription& ts : subs_) {
      if (expand(ts.name, env) == name) return env;
    }
  }
  return std::nullopt;
}

}  // namespace backbone

#include <fstream>

namespace backbone {

Result<Topology> Topology::load(const std::string& path) {
  if (path.empty()) return built_in();
  std::ifstream in(path);
  if (!in) return make_error(Errc::kNotFound, "cannot read topology file " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  return parse(buf.str(), path);
}

}  // namespace backbone
