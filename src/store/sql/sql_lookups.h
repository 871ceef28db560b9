// The reads of a server store's write transaction. A write decides on what it reads under its
// locks: which fingerprints were ingested already, which events are processed, which version
// each record is at, its buckets' epochs, and the head of the writer slot it took. They travel in
// the transaction's first round trip: the row locks (lock_buckets, take_slot), then UNION ALLs
// of rows (kind, a, b, c), a kind being one set lookup. parse_lookups reads the rows back into
// typed Reads.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/sql/sql_connection.h"
#include "store/sql/sql_dialect.h"
#include "store/store_core.h"

namespace backbone::sql {

// What a lookup reads; the character is its kind column's value.
enum class LookupKind : char {
  kIngested = 'f',   // a: fingerprint, b: the id of the event ingested with it
  kProcessed = 'p',  // a: event id, b: processed
  kVersion = 'v',    // a: record_type, b: record_id, c: version
};

// One set lookup: `head` selects three text columns and ends in "... IN (", `row` is one
// value's placeholders, `params` the values (`arity` per value).
struct SetLookup {
  LookupKind kind;
  std::string head;
  std::string row;
  size_t arity;
  std::vector<std::string> params;
};

// The lookups' SELECT of kIngested, kProcessed and kVersion (the dialect spells the casts and
// index hints).
SetLookup ingested_lookup(const SqlDialect& d, std::vector<std::string> fingerprints);
SetLookup processed_lookup(const SqlDialect& d, std::vector<std::string> event_ids);
// `keys`: flattened (record_type, record_id) pairs.
SetLookup version_lookup(const SqlDialect& d, std::vector<std::string> keys);

struct Reads {
  std::unordered_map<std::string, EventId> ingested;  // fingerprint -> event id
  MergeReads merge;  // processed flags, record versions and the locked buckets' epochs
  AuditHead head;    // of the writer slot the write holds
};

// Locks the lease rows of `buckets` (every row when empty) for the transaction and reads their
// epochs (rows: bucket, epoch). A claim of one of them waits until the write ends, so the
// epochs read are those the write commits against: the fence is part of the write.
SqlStatement lock_buckets(const SqlDialect& d, std::span<const uint32_t> buckets);
// Rows of lock_buckets into `reads.epochs`.
void read_epochs(const SqlRows& rows, MergeReads& reads);

// Takes a writer slot for the transaction: locks the head of the first slot from `from` on that
// no other write holds (SKIP LOCKED: it never waits), and reads it. No row when every one is
// held. Every store, process and thread that writes at once so appends to a chain of its own.
SqlStatement take_slot(const SqlDialect& d, uint32_t from);
// The head that take_slot read; nullopt for no row; kDataLoss for an id that does not parse.
Result<std::optional<AuditHead>> read_slot(const SqlRows& rows);
// Records slot `head.slot`'s new head, in the write that moved it.
SqlStatement save_slot(const AuditHead& head);
// Every slot's head, by slot (the SELECT, and its rows read back).
std::string select_heads(const SqlDialect& d);
Result<std::vector<AuditHead>> read_heads(const SqlRows& rows);

// The statements that read `lookups`, 256 values of a lookup per statement, onto `out`.
void append_lookups(const SqlDialect& d, const std::vector<SetLookup>& lookups,
                    std::vector<SqlStatement>& out);
// The rows of those statements, read back.
Result<Reads> parse_lookups(std::span<SqlRows> results);

}  // namespace backbone::sql
