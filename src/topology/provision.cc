// plan_topology and provision_topology: the broker compared with, and brought to, the topology
// of one environment.
#include <algorithm>
#include <set>

#include "backbone/topology.h"

namespace backbone {
namespace {

std::string retry_text(const std::optional<RetryPolicy>& r) {
  return r ? format_duration(r->min_backoff_us) + ".." + format_duration(r->max_backoff_us)
           : "none";
}

std::string dead_letter_text(const std::optional<DeadLetterPolicy>& d) {
  return d ? d->topic + " after " + std::to_string(d->max_delivery_attempts) : "none";
}

// What differs between the broker's subscription and the configured one.
void compare(const SubscriptionConfig& have, const SubscriptionConfig& want, ProvisionItem& item) {
  auto diff = [&](const char* what, const std::string& a, const std::string& b) {
    if (a != b) item.differences.push_back(std::string(what) + ": broker " + a + ", config " + b);
  };
  diff("topic", have.topic, want.topic);
  diff("ordered", have.ordered ? "yes" : "no", want.ordered ? "yes" : "no");
  if (have.ordered && want.ordered) {
    diff("key_delivery", std::string(key_delivery_name(have.key_delivery)),
         std::string(key_delivery_name(want.key_delivery)));
  }
  const bool unfixable = !item.differences.empty();
  diff("ack_deadline", format_duration(have.ack_deadline_us),
       format_duration(want.ack_deadline_us));
  diff("retry", retry_text(have.retry), retry_text(want.retry));
  diff("dead_letter", dead_letter_text(have.dead_letter), dead_letter_text(want.dead_letter));
  diff("retention", format_duration(have.retention_us), format_duration(want.retention_us));
  for (const auto& [k, v] : want.labels) {
    auto it = have.labels.find(k);
    diff(("label " + k).c_str(), it == have.labels.end() ? "(none)" : it->second, v);
  }
  if (unfixable) {
    item.state = ProvisionItem::State::kUnfixable;
  } else if (!item.differences.empty()) {
    item.state = ProvisionItem::State::kDrift;
  }
}

}  // namespace

const char* provision_state_name(ProvisionItem::State state) {
  switch (state) {
    case ProvisionItem::State::kOk:
      return "ok";
    case ProvisionItem::State::kMissing:
      return "missing";
    case ProvisionItem::State::kDrift:
      return "drift";
    case ProvisionItem::State::kUnfixable:
      return "unfixable";
    case ProvisionItem::State::kExtra:
      return "extra";
  }
  return "ok";
}

Result<std::vector<ProvisionItem>> plan_topology(Broker& broker, const Topology& topology,
                                                 std::string_view env,
                                                 std::span<const std::string> all_envs) {
  if (std::find(all_envs.begin(), all_envs.end(), env) == all_envs.end()) {
    return make_error(Errc::kNotFound, "unknown environment \"" + std::string(env) + "\"");
  }
  std::vector<ProvisionItem> items;
  std::set<std::string> known;
  for (const TopicConfig& want : topology.topics(env)) {
    ProvisionItem item{ProvisionItem::Kind::kTopic, want.name};
    item.topic = want;
    known.insert(want.name);
    auto have = broker.get_topic(want.name);
    if (!have.ok() && have.code() != Errc::kNotFound) return have.error();
    if (!have.ok()) item.state = ProvisionItem::State::kMissing;
    items.push_back(std::move(item));
  }
  for (const SubscriptionConfig& want : topology.subscriptions(env)) {
    ProvisionItem item{ProvisionItem::Kind::kSubscription, want.name};
    item.subscription = want;
    known.insert(want.name);
    auto have = broker.get_subscription(want.name);
    if (!have.ok() && have.code() != Errc::kNotFound) return have.error();
    if (!have.ok()) {
      item.state = ProvisionItem::State::kMissing;
    } else {
      compare(*have, want, item);
    }
    items.push_back(std::move(item));
  }
  // Resources of this environment that the topology does not name.
  auto mine = [&](const std::string& name, const Attributes& labels) {
    auto it = labels.find(std::string(kLabelEnv));
    if (it != labels.end()) return it->second == env;
    return topology.environment_of(name, all_envs) == std::optional<std::string>(env);
  };
  auto topics = broker.list_topics();
  if (!topics.ok()) return topics.error();
  for (const TopicConfig& t : *topics) {
    if (!known.count(t.name) && mine(t.name, t.labels)) {
      ProvisionItem item{ProvisionItem::Kind::kTopic, t.name, ProvisionItem::State::kExtra};
      item.topic = t;
      items.push_back(std::move(item));
    }
  }
  auto subs = broker.list_subscriptions();
  if (!subs.ok()) return subs.error();
  for (const SubscriptionConfig& s : *subs) {
    if (!known.count(s.name) && mine(s.name, s.labels)) {
      ProvisionItem item{ProvisionItem::Kind::kSubscription, s.name, ProvisionItem::State::kExtra};
      item.subscription = s;
      items.push_back(std::move(item));
    }
  }
  return items;
}

Result<std::vector<ProvisionItem>> provision_topology(Broker& broker, const Topology& topology,
                                                      std::string_view env,
                                                      std::span<const std::string> all_envs) {
  auto plan = plan_topology(broker, topology, env, all_envs);
  if (!plan.ok()) return plan.error();
  // Topics first: subscriptions need their topic and their dead-letter topic.
  for (const ProvisionItem& item : *plan) {
    if (item.kind == ProvisionItem::Kind::kTopic && item.state == ProvisionItem::State::kMissing) {
      auto r = broker.create_topic(*item.topic);
      if (!r.ok() && r.code() != Errc::kAlreadyExists) return r.error();
    }
  }
  for (ProvisionItem& item : *plan) {
    if (item.kind != ProvisionItem::Kind::kSubscription) continue;
    if (item.state == ProvisionItem::State::kMissing) {
      auto r = broker.create_subscription(*item.subscription);
      if (!r.ok() && r.code() != Errc::kAlreadyExists) return r.error();
    } else if (item.state == ProvisionItem::State::kDrift) {
      BACKBONE_TRY(broker.update_subscription(*item.subscription));
    } else {
      continue;
    }
    // What the broker made of it.
    auto have = broker.get_subscription(item.name);
    if (!have.ok()) return have.error();
    ProvisionItem after{ProvisionItem::Kind::kSubscription, item.name};
    compare(*have, *item.subscription, after);
    for (const std::string& d : after.differences) {
      item.warnings.push_back(d + " (the broker kept its own value)");
    }
  }
  return plan;
}

}  // namespace backbone
