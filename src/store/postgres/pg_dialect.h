// The PostgreSQL dialect of the server store (libpq): doc/store_servers.md.
//
// Thread-safety: the dialect is a stateless singleton; its connections are not thread-safe.
#pragma once

#include "store/sql/sql_dialect.h"

namespace backbone::sql {

const SqlDialect& postgres_dialect();

}  // namespace backbone::sql
