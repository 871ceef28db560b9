// PgConnection: a SqlConnection on libpq (PostgreSQL 15). `?` placeholders become $1, $2, ...;
// statements are prepared once per connection (PQprepare) and run with text parameters. The
// session runs in UTC, so timestamptz values travel as "YYYY-MM-DD HH:MM:SS.ffffff".
//
// Thread-safety: not thread-safe (SqlConnection).
#pragma once

#include <memory>

#include "store/sql/sql_connection.h"

namespace backbone::pg {

// kUnavailable when the server cannot be reached; kPermissionDenied when the login is refused.
Result<std::unique_ptr<sql::SqlConnection>> connect(const sql::SqlLogin& login);

}  // namespace backbone::pg
