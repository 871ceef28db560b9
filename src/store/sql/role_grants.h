// The roles of SPEC §2 on a database server: `backbone db grant` and `backbone db check-grants`.
//
// grant_roles logs in as the URL's administrator, creates the database when it is missing, and
// creates or updates the logins of migrator, sync_worker, merge_worker and reader (named after
// the URL's role_prefix; passwords from BACKBONE_ROLE_PASSWORD_<ROLE>), with exactly their
// privileges: everything else they had on the store's tables is revoked first. Running it again
// changes nothing. When the tables do not exist yet, `migrate` grants the table privileges.
//
// check_grants logs in as each role and tries, on each table, what SPEC §2 allows and what it
// does not (in transactions that are rolled back, on no rows), and DDL; the server's own answer
// decides each cell.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backbone/result.h"
#include "backbone/role.h"
#include "store/sql/sql_dialect.h"

namespace backbone::sql {

// What grant_roles did, a line per step, for people.
//
// `dialect` is the URL's (server_store_dialect() of store/open/); nullptr, for a URL that is not
// of a server store, is refused with kInvalidArgument.
Result<std::vector<std::string>> grant_roles(std::string_view url, const SqlDialect* dialect);

struct GrantProbe {
  Role role;
  std::string probe;    // "events: UPDATE (processed)", "DDL: CREATE TABLE", ...
  bool expected;        // SPEC §2 allows it
  bool allowed;         // the server allowed it
  std::string refusal;  // the server's error when refused
};

// Every role × probe. Fails only when a role cannot log in or the store is not migrated.
Result<std::vector<GrantProbe>> check_grants(std::string_view url, const SqlDialect* dialect);

}  // namespace backbone::sql
