// MysqlConnection: a SqlConnection on MariaDB Connector/C (MariaDB 10.11, MySQL 8 compatible).
// Statements are prepared once per connection (mysql_stmt_prepare) and run with text
// parameters; results are fetched as text. The session runs in UTC (time_zone '+00:00'), in
// strict mode and READ COMMITTED, with utf8mb4.
//
// Thread-safety: not thread-safe (SqlConnection).
#pragma once

#include <memory>

#include "store/sql/sql_connection.h"

namespace backbone::mysql {

// kUnavailable when the server cannot be reached; kPermissionDenied when the login is refused.
Result<std::unique_ptr<sql::SqlConnection>> connect(const sql::SqlLogin& login);

}  // namespace backbone::mysql
