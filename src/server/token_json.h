// A token, and an act of the admin audit, as JSON. A token: in the HTTP token routes and `backbone
// token list --json`: {"id" (the first 12 digits of its hash), "name", "roles", "created_at",
// "expires_at", "last_used_at", "revoked_at"} (times RFC 3339, null when absent). Never the token,
// nor its whole hash.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "backbone/event_store.h"

namespace backbone::server {

nlohmann::json token_json(const StoredToken& t);

// An act of the admin audit: {"id", "at" (RFC 3339), "actor", "action", "target", "detail" (an
// object, or null)}; in the admin-audit route and `backbone audit admin --json`.
nlohmann::json admin_action_json(const AdminAction& a);

}  // namespace backbone::server
