// Topology: the topics and subscriptions of every environment (SPEC §3), from
// config/topology.toml. It is the only place that knows resource names: code asks for a topic
// family, and the topology answers with the environment's topic name.
//
// EnvPublisher is a publisher bound to one environment. It resolves names only through the
// topology, refuses another environment's topics with kPermissionDenied, and requires the
// ordering key on the raw and merged topics.
//
// Thread-safety: Topology is an immutable value. EnvPublisher is as thread-safe as its Broker.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backbone/broker.h"
#include "backbone/record_key.h"
#include "backbone/result.h"

namespace backbone {

enum class TopicFamily { kRaw, kMerged, kError, kDlq };
const char* topic_family_name(TopicFamily family);  // "raw", "merged", "error", "dlq"

// The labels every provisioned resource carries.
inline constexpr std::string_view kLabelEnv = "env";
inline constexpr std::string_view kLabelManagedBy = "managed-by";

struct TopologySubscription {
  std::string name;  // with "{env}"
  std::string role;  // what consumes it: "merge", "sync", "audit", "retry", "inspect"
  TopicFamily topic = TopicFamily::kRaw;
  std::string consumer;
  SubscriptionConfig policy;  // name and topic empty; the dead-letter topic is a family name
  std::optional<TopicFamily> dead_letter;
};

class Topology {
 public:
  // Parses topology TOML; every name must contain "{env}". Errors name the key.
  static Result<Topology> parse(std::string_view toml, std::string_view source);
  // The topology built into the binary (config/topology.toml).
  static const Topology& built_in();
  // A file, or the built-in one when `path` is empty.
  static Result<Topology> load(const std::string& path);

  const std::string& project() const { return project_; }
  std::string topic_name(TopicFamily family, std::string_view env) const;
  std::vector<TopicConfig> topics(std::string_view env) const;
  std::vector<SubscriptionConfig> subscriptions(std::string_view env) const;
  // The subscription of `env` with `role`: kNotFound if the topology has none.
  Result<SubscriptionConfig> subscription_for(std::string_view role, std::string_view env) const;
  const std::vector<TopologySubscription>& subscription_templates() const { return subs_; }
  // The environment (among `envs`) whose topology names `name` (a topic or subscription).
  std::optional<std::string> environment_of(std::string_view name,
                                            std::span<const std::string> envs) const;

 private:
  std::string project_;
  std::string topics_[4];
  std::vector<TopologySubscription> subs_;
};

// What provisioning found for one resource.
struct ProvisionItem {
  enum class Kind { kTopic, kSubscription };
  enum class State {
    kOk,         // exists as configured
    kMissing,    // not in the broker (provision creates it)
    kDrift,      // exists with other policies (provision updates it)
    kUnfixable,  // differs in what cannot change (ordering, topic): delete it, then provision
    kExtra,      // in the broker, of this environment, but not in the topology
  };
  Kind kind = Kind::kTopic;
  std::string name;
  State state = State::kOk;
  std::vector<std::string> differences;  // "ack_deadline: broker 10s, config 30s"
  // After provision_topology created or updated it: what the broker kept otherwise than the
  // topology asked (an emulator's limit, say), which `topology show` then reports as drift.
  std::vector<std::string> warnings;
  std::optional<TopicConfig> topic;                // as configured (or as found, for kExtra)
  std::optional<SubscriptionConfig> subscription;  // as configured (or as found, for kExtra)
};
const char* provision_state_name(ProvisionItem::State state);

// Compares the broker with the topology of `env`.
Result<std::vector<ProvisionItem>> plan_topology(Broker& broker, const Topology& topology,
                                                 std::string_view env,
                                                 std::span<const std::string> all_envs);
// Creates what is missing and updates what drifted; returns the plan as it was before, with the
// warnings of what the broker kept otherwise. Running it again finds everything kOk (but what
// the broker cannot keep, which stays kDrift with the same warnings).
Result<std::vector<ProvisionItem>> provision_topology(Broker& broker, const Topology& topology,
                                                      std::string_view env,
                                                      std::span<const std::string> all_envs);

class EnvPublisher {
 public:
  // `broker` and `topology` must outlive the publisher.
  EnvPublisher(Broker& broker, const Topology& topology, std::string env,
               std::vector<std::string> all_envs);

  const std::string& env() const { return env_; }

  // Publishes to this environment's topic of `family`. Raw and merged need every message's
  // ordering key (kInvalidArgument otherwise).
  Result<std::vector<std::string>> publish(TopicFamily family,
                                           std::span<const OutgoingMessage> messages);
  // Publishes one message about `record`, with its ordering key "{record_type}:{record_id}".
  Result<std::string> publish_record(TopicFamily family, const RecordKey& record, std::string data,
                                     Attributes attributes = {});
  // Publishes by topic name: kPermissionDenied unless the name is this environment's.
  Result<std::vector<std::string>> publish_to(std::string_view topic,
                                              std::span<const OutgoingMessage> messages);

 private:
  Broker& broker_;
  const Topology& topology_;
  std::string env_;
  std::vector<std::string> all_envs_;
};

}  // namespace backbone
