// The reads of a server store's write transaction. A write decides on what it reads under the
// writer lock: which fingerprints were ingested already, which events are processed, which
// version each record is at, and the audit chain's tail. They travel in the transaction's first
// round trip, as UNION ALLs of rows (kind, a, b, c); a kind is one set lookup, and the tail
// comes with every first statement. parse_lookups reads the rows back into typed Reads.
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
  kTail = 't',       // a: the last audit entry's id, b: its chain_hash, c: created_at (us)
  kEpoch = 'e',      // a: bucket, b: its epoch
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
SetLookup epoch_lookup(const SqlDialect& d, std::vector<std::string> buckets);

struct Reads {
  std::unordered_map<std::string, EventId> ingested;  // fingerprint -> event id
  MergeReads merge;                                   // processed flags and record versions
  ChainTail tail;
};

// The statements that read `lookups` and the chain's tail, 256 values of a lookup per
// statement, onto `out`.
void append_lookups(const SqlDialect& d, const std::vector<SetLookup>& lookups,
                    std::vector<SqlStatement>& out);
// The rows of those statements, read back. kDataLoss for a tail whose id does not parse.
Result<Reads> parse_lookups(std::span<SqlRows> results);

}  // namespace backbone::sql
