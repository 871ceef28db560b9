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

SqlStatement lock_buckets(const SqlDialect& d, std::span<const uint32_t> buckets) {
  SqlStatement st{"SELECT " + d.text("bucket") + ", " + d.text("epoch") + " FROM bucket_leases",
                  {}};
  if (!buckets.empty()) {
    st.sql += " WHERE bucket IN (" + repeat_row("?", buckets.size()) + ")";
    for (uint32_t b : buckets) st.params.push_back(std::to_string(b));
  }
  st.sql += " ORDER BY bucket FOR UPDATE";
  return st;
}

void read_epochs(const SqlRows& rows, MergeReads& reads) {
  for (const SqlRow& r : rows.rows) {
    reads.epochs[static_cast<uint32_t>(to_int(r.at(0)))] = static_cast<uint64_t>(to_int(r.at(1)));
  }
}

namespace {

// slot, id, chain_hash, created_at_us, legacy_until
std::string head_columns(const SqlDialect& d) {
  return d.text("slot") + ", " + d.text("id") + ", chain_hash, " + d.text("created_at_us") + ", " +
         d.text("legacy_until");
}

Result<AuditHead> read_head(const SqlRow& r) {
  AuditHead h;
  h.slot = static_cast<uint32_t>(to_int(r.at(0)));
  auto id = [&](size_t c) -> Result<std::optional<EventId>> {
    if (!r.at(c)) return std::optional<EventId>();
    auto parsed = EventId::parse(*r.at(c));
    if (!parsed.ok()) {
      return make_error(Errc::kDataLoss,
                        "audit head of slot " + std::to_string(h.slot) + " has a malformed id");
    }
    return std::optional<EventId>(*parsed);
  };
  auto last = id(1);
  if (!last.ok()) return last.error();
  auto legacy = id(4);
  if (!legacy.ok()) return legacy.error();
  h.id = last->value_or(EventId());
  h.chain_hash = r.at(2).value_or(std::string(kAuditGenesis));
  h.created_at = Timestamp::from_micros(r.at(3) ? to_int(r.at(3)) : 0);
  h.legacy_until = *legacy;
  return h;
}

}  // namespace

SqlStatement take_slot(const SqlDialect& d, uint32_t from) {
  return {"SELECT " + head_columns(d) +
              " FROM audit_heads WHERE slot >= ? ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED",
          {std::to_string(from)}};
}

Result<std::optional<AuditHead>> read_slot(const SqlRows& rows) {
  if (rows.rows.empty()) return std::optional<AuditHead>();
  auto h = read_head(rows.rows[0]);
  if (!h.ok()) return h.error();
  return std::optional<AuditHead>(std::move(*h));
}

SqlStatement save_slot(const AuditHead& head) {
  return {"UPDATE audit_heads SET id = ?, chain_hash = ?, created_at_us = ? WHERE slot = ?",
          {head.id.str(), head.chain_hash, std::to_string(head.created_at.micros()),
           std::to_string(head.slot)}};
}

std::string select_heads(const SqlDialect& d) {
  return "SELECT " + head_columns(d) + " FROM audit_heads ORDER BY slot";
}

Result<std::vector<AuditHead>> read_heads(const SqlRows& rows) {
  return read_rows<AuditHead>(rows, read_head);
}

void append_lookups(const SqlDialect& d, const std::vector<SetLookup>& lookups,
                    std::vector<SqlStatement>& out) {
  std::vector<std::vector<size_t>> chunks;
  size_t statements = 0;
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
        default:
          return make_error(Errc::kInternal, "a lookup row of no known kind");
      }
    }
  }
  return reads;
}

}  // namespace backbone::sql
