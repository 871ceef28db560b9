// Principal and Permission: who a bearer token speaks for, and what it may do.
//
// A Permission is one of the five things a token can be granted (publish, subscribe, read,
// admin, pipeline); admin implies publish, subscribe and read, and so does pipeline. They are not
// the database roles of SPEC §2 (backbone::Role, which say which SQL a store connection may run)
// nor the roles of topology.toml (which name a subscription's job). The HTTP API and the Pub/Sub
// front check them with the same functions, declared here.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backbone/result.h"

namespace backbone::auth {

// kPipeline is a backbone process's own: another `serve` whose pubsub:// broker is this
// process's Pub/Sub front writes the topics that backbone owns (raw, merged, error, dlq) and
// pulls the subscriptions of backbone's own stages, which nobody else may, not even admin
// (events enter through the store). admin does not imply it; it does not imply admin (a
// process that provisions its topology at start needs both).
enum class Permission : uint8_t { kPublish, kSubscribe, kRead, kAdmin, kPipeline };

inline constexpr Permission kPermissions[] = {Permission::kPublish, Permission::kSubscribe,
                                              Permission::kRead, Permission::kAdmin,
                                              Permission::kPipeline};

// "publish", "subscribe", "read", "admin", "pipeline": the names tokens are created with and
// stored under.
const char* permission_name(Permission p);
// kInvalidArgument naming the five for anything else.
Result<Permission> parse_permission(std::string_view name);

// A set of permissions.
class Permissions {
 public:
  Permissions() = default;
  Permissions(std::initializer_list<Permission> ps) {
    for (Permission p : ps) add(p);
  }
  void add(Permission p) { bits_ |= bit(p); }
  bool has(Permission p) const { return bits_ & bit(p); }
  bool empty() const { return bits_ == 0; }
  // The names of the permissions held, in the order of kPermissions.
  std::vector<std::string> names() const;
  bool operator==(const Permissions&) const = default;

 private:
  static uint8_t bit(Permission p) { return static_cast<uint8_t>(1u << static_cast<unsigned>(p)); }
  uint8_t bits_ = 0;
};

struct Principal {
  std::string name;
  std::string env;  // the one environment the token works in
  Permissions permissions;
  std::string id;  // the token's id (token_id), where known

  // Who this is in the admin audit: "token <id> (<name>)".
  std::string actor() const { return "token " + (id.empty() ? "?" : id) + " (" + name + ")"; }

  // True when the principal holds `p`, or a role that implies it.
  bool may(Permission p) const {
    if (permissions.has(p)) return true;
    const bool everyday =
        p == Permission::kPublish || p == Permission::kSubscribe || p == Permission::kRead;
    return everyday &&
           (permissions.has(Permission::kAdmin) || permissions.has(Permission::kPipeline));
  }
};

// kPermissionDenied unless `who` may do `p`.
Result<void> require(const Principal& who, Permission p);
// kPermissionDenied unless `who` works in `env` and may do `p` there.
Result<void> require(const Principal& who, std::string_view env, Permission p);

}  // namespace backbone::auth
