#include "store/store_core.h"

#include <algorithm>

namespace backbone {

Result<AuditEntry> AuditSealer::seal(const AuditDraft& draft, ChainTail& tail) const {
  const EventId id = ids_.next_after(tail.id);
  const Timestamp created_at = std::max(clock_.now(), tail.created_at);
  auto entry = seal_audit_entry(draft, id, created_at, tail.chain_hash);
  if (!entry.ok()) return entry.error();
  tail = ChainTail::of(*entry);
  return entry;
}

Result<std::vector<AuditEntry>> AuditSealer::seal_all(std::span<const AuditDraft> drafts,
                                                      ChainTail& tail) const {
  std::vector<AuditEntry> out;
  out.reserve(drafts.size());
  for (size_t i = 0; i < drafts.size(); ++i) {
    auto entry = seal(drafts[i], tail);
    if (!entry.ok()) return Error(entry.error()).at_item("audit", i);
    out.push_back(std::move(*entry));
  }
  return out;
}

Error version_conflict(const MergeCommit& c, uint64_t have) {
  return make_error(Errc::kConflict, "record " + c.record.record_type + "/" + c.record.record_id +
                                         " is at version " + std::to_string(have) + ", not " +
                                         std::to_string(c.expected_version));
}

Result<void> check_chain_unmoved(const ChainTail& tail,
                                 const std::optional<EventId>& rebuilt_after) {
  if (rebuilt_after ? (tail.empty() || tail.id != *rebuilt_after) : !tail.empty()) {
    return make_error(Errc::kConflict,
                      "the audit log moved on while the records were rebuilt (is `serve` "
                      "running?); nothing was replaced");
  }
  return {};
}

const Clock& store_clock(const StoreOptions& options) {
  return options.clock ? *options.clock : SystemClock::instance();
}

EventIdGenerator& store_ids(const StoreOptions& options) {
  return options.ids ? *options.ids : EventIdGenerator::process();
}

}  // namespace backbone
