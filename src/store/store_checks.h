// Checks every EventStore backend makes the same way, with the same messages: the schema version
// a store is at against the one this build needs, and operations that need the migrator role.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "backbone/result.h"
#include "backbone/role.h"

namespace backbone {

// kUnavailable when `have` is not `want`: older says to run `backbone migrate`, newer says the
// build is too old. `store` names the store in the message (no password).
Result<void> check_schema_version(const std::string& store, int have, int want);

// kPermissionDenied unless `role` is the migrator; `what` is the operation ("migrations need").
Result<void> require_migrator(Role role, const char* what);

}  // namespace backbone
