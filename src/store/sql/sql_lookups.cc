#include "store/sql/sql_lookups.h"

#include <algorithm>

#include "store/sql/sql_row_decode.h"
#include "store/sql/sql_rows.h"

namespace backbone::sql {
namespace {

// The columns of a lookup row.
enum class LookupColumn : size_t { kKind, kA, kB, kC };

std::string value(const SqlRow& r, LookupColumn c) { return column(r, c).value_or(""); }

}  // namespace

SetLookup ingested_lookup(const SqlDialect& d, std::vector<std::string> fingerprints) {
  return {LookupKind::kIngested,
          "fingerprint, " + d.text("event_id") + ", NULL FROM event_audit_log" +
              d.force_index("idx_audit_fingerprint") +
              " WHERE action = 'ingested' AND fingerprint IN (",
          "?", 1, std::move(fingerprints)};
}

SetLookup processed_lookup(const SqlDialect& d, std::vector<std::string> event_ids) {
  return {LookupKind::kProcessed,
          d.text("id") + ", " + d.text("processed") + ", NULL FROM events" +
              d.force_index("PRIMARY") + " WHERE id IN (",
          "?", 1, std::move(event_ids)};
}

SetLookup version_lookup(const SqlDialect& d, std::vector<std::string> keys) {
  return {LookupKind::kVersion,
          "record_type, record_id, " + d.text("version") + " FROM records" +
              d.force_index("PRIMARY") + " WHERE (record_type, record_id) IN (",
          "(?, ?)", 2, std::move(keys)};
}

SetLookup epoch_lookup(const SqlDialect& d, std::vector<std::string> buckets) {
  return {LookupKind::kEpoch,
          d.text("bucket") + ", " + d.text("epoch") + ", NULL FROM bucket_leases WHERE bucket IN (",
          "?", 1, std::move(buckets)};
}

void append_lookups(const SqlDialect& d, const std::vector<SetLookup>& lookups,
                    std::vector<SqlStatement>& out) {
  std::vector<std::vector<size_t>> chunks;
  size_t statements = 1;
  for (const SetLookup& l : lookups) {
    chunks.push_back(chunk_sizes(l.params.size() / l.arity));
    statements = std::max(statements, chunks.back().size());
  }
  std::vector<size_t> at(lookups.size(), 0);
  for (size_t k = 0; k < statements; ++k) {
    SqlStatement st;
    for (size_t l = 0; l < lookups.size(); ++l) {
      if (k >= chunks[l].size()) continue;
      const size_t n = chunks[l][k];
      if (!st.sql.empty()) st.sql += " UNION ALL ";
      st.sql += "SELECT '" + std::string(1, static_cast<char>(lookups[l].kind)) + "', " +
                lookups[l].head + repeat_row(lookups[l].row, n) + ")";
      st.params.insert(st.params.end(), lookups[l].params.begin() + at[l],
                       lookups[l].params.begin() + at[l] + n * lookups[l].arity);
      at[l] += n * lookups[l].arity;
    }
    if (k == 0) {
      if (!st.sql.empty()) st.sql += " UNION ALL ";
      st.sql += "(SELECT '" + std::string(1, static_cast<char>(LookupKind::kTail)) + "', " +
                d.text("id") + ", chain_hash, " + d.text(d.epoch_micros("created_at")) +
                // The table's id, not the text column named after it: the index, not a sort.
                " FROM event_audit_log ORDER BY event_audit_log.id DESC LIMIT 1)";
    }
    st.sql = d.key_lookup_prefix() + st.sql;
    out.push_back(std::move(st));
  }
}

Result<Reads> parse_lookups(std::span<SqlRows> results) {
  using C = LookupColumn;
  Reads reads;
  for (SqlRows& rows : results) {
    for (const SqlRow& r : rows.rows) {
      const std::string kind = value(r, C::kKind);
      if (kind.size() != 1) return make_error(Errc::kInternal, "a lookup row of no known kind");
      switch (static_cast<LookupKind>(kind[0])) {
        case LookupKind::kIngested:
          if (auto id = EventId::parse(value(r, C::kB)); id.ok()) {
            reads.ingested.emplace(value(r, C::kA), *id);
          }
          break;
        case LookupKind::kProcessed:
          reads.merge.processed[value(r, C::kA)] = to_bool(column(r, C::kB));
          break;
        case LookupKind::kVersion:
          reads.merge.versions[std::pair(value(r, C::kA), value(r, C::kB))] =
              static_cast<uint64_t>(to_int(column(r, C::kC)));
          break;
        case LookupKind::kEpoch:
          reads.merge.epochs[static_cast<uint32_t>(to_int(column(r, C::kA)))] =
              static_cast<uint64_t>(to_int(column(r, C::kB)));
          break;
        case LookupKind::kTail: {
          auto id = EventId::parse(value(r, C::kA));
          if (!id.ok()) return make_error(Errc::kDataLoss, "last audit entry has a malformed id");
          reads.tail.id = *id;
          reads.tail.chain_hash = value(r, C::kB);
          reads.tail.created_at = Timestamp::from_micros(to_int(column(r, C::kC)));
          break;
        }
        default:
          return make_error(Errc::kInternal, "a lookup row of no known kind");
      }
    }
  }
  return reads;
}

}  // namespace backbone::sql
