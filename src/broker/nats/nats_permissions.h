// What a NATS user confined to one environment may do, for nats-server's per-user
// `permissions` (doc/broker_nats.md, "Environment isolation").
//
// NATS wildcards match whole subject tokens only, and a name enters a subject as one token, so
// the permissions list every subject of the environment's own resources by name (from the
// topology): publish to its topics' and journals' subjects and to its catalog keys, the
// JetStream API of its own streams (create, update, info, delete, purge, consumers, flow
// control), and reads of the catalog bucket; subscribe only under the user's own inbox prefix.
// Nothing of another environment is allowed, so the server itself refuses a sandbox user's
// publish to any production subject.
//
// Thread-safety: plain functions.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace backbone::nats {

struct NatsPermissions {
  std::vector<std::string> publish;    // allowed subjects
  std::vector<std::string> subscribe;  // allowed subjects
};

// The inbox prefix that an environment's user connects with (`inbox_prefix=` in its URL).
std::string environment_inbox_prefix(const std::string& env);

NatsPermissions environment_permissions(const std::string& ns, const std::string& inbox_prefix,
                                        std::span<const std::string> topics,
                                        std::span<const std::string> subscriptions);

// The permissions as a nats-server configuration value (a JSON object, which the server's
// configuration format takes): {"publish": {"allow": [...]}, "subscribe": {"allow": [...]}}.
std::string format_permissions(const NatsPermissions& permissions);

}  // namespace backbone::nats
