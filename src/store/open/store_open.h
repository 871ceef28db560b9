// The store port's factory: EventStore::open (declared in backbone/event_store.h) picks the
// backend by the URL's scheme, and this module is the one place that knows them all. It also
// names the SQL dialect of a server store URL, for the tools that talk to a server store's
// database directly (`db grant`, `db check-grants`, the test harness and the benchmarks).
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "store/sql/sql_dialect.h"
#include "store/store_url.h"

namespace backbone {

// The dialect of a postgresql:// or mysql:// store URL; nullptr for any other URL.
const sql::SqlDialect* server_store_dialect(const StoreUrl& url);
const sql::SqlDialect* server_store_dialect(std::string_view url);

}  // namespace backbone
