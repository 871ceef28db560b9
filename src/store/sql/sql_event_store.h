// The EventStore on a database server (PostgreSQL, MySQL/MariaDB): one implementation over
// SqlConnection and SqlDialect.
//
// How it works:
//  - Reads lease a pooled connection and run one prepared query.
//  - Every write runs in one transaction that takes only the locks it needs, so that several
//    processes write one database at once (doc/store_servers.md, "Writes"): an append a lock
//    per fingerprint, a merge commit its buckets' lease rows, and every write that appends
//    audit entries a writer slot's head (its own chain, doc/audit_chain.md). Inside it, the
//    store reads what it needs with a few set queries (ids, fingerprints, record versions),
//    decides in memory, and writes with multi-row INSERTs and the slot's new head.
//  - Concurrent commit_merges callers in one process share one transaction (GroupCommit).
//  - A lost connection (the server restarting) is retried with backoff for up to
//    reconnect_timeout_ms. A write whose COMMIT was cut off is checked before it is retried: if
//    its last audit entry exists, it committed and its result stands; otherwise it runs again.
//    So a restart neither loses nor duplicates an event. (This backoff waits in real time, on
//    the steady clock, not on StoreOptions::clock: it paces reconnecting to a server, while the
//    store's Clock stamps audit entries and may be a manual clock in tests.)
#pragma once

#include <memory>

#include "backbone/event_store.h"
#include "store/sql/sql_dialect.h"
#include "store/store_url.h"

namespace backbone::sql {

// Opens a server store for options.role. Connects once, so that a wrong password or an
// unreachable server fails here (kPermissionDenied, kUnavailable).
Result<std::unique_ptr<EventStore>> open_server_store(const SqlDialect& dialect,
                                                      const StoreUrl& url,
                                                      const StoreOptions& options);

}  // namespace backbone::sql
