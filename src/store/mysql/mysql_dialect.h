// The MySQL/MariaDB dialect of the server store (libmariadb): doc/store_servers.md.
//
// Thread-safety: the dialect is a stateless singleton; its connections are not thread-safe.
#pragma once

#include "store/sql/sql_dialect.h"

namespace backbone::sql {

const SqlDialect& mysql_dialect();

}  // namespace backbone::sql
