// The rules every EventStore backend applies the same way when it writes, written once:
//
//  - ChainTail, the last entry of the audit chain, and AuditSealer, which seals the next entry
//    after it (id after the tail's, time never before the tail's, chain hash over the tail's)
//    and moves the tail on: doc/audit_chain.md;
//  - the version conflict of a merge commit, and the check that the chain did not move on while
//    `rebuild` computed the records it replaces;
//  - the clock and id generator a store uses when StoreOptions names none.
//
// Thread-safety: ChainTail is a plain value; an AuditSealer is used by one writer at a time (it
// holds references to the store's clock and id generator, which are thread-safe).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backbone/audit_entry.h"
#include "backbone/event_store.h"

namespace backbone {

struct ChainTail {
  EventId id;  // the nil id before the first entry
  std::string chain_hash{kAuditGenesis};
  Timestamp created_at;

  static ChainTail of(const AuditEntry& e) { return {e.id, e.chain_hash, e.created_at}; }
  // No entry yet.
  bool empty() const { return chain_hash == kAuditGenesis; }
};

class AuditSealer {
 public:
  AuditSealer(const Clock& clock, EventIdGenerator& ids) : clock_(clock), ids_(ids) {}

  // Seals `draft` after `tail` and moves `tail` on to it.
  Result<AuditEntry> seal(const AuditDraft& draft, ChainTail& tail) const;
  // Seals every draft in order; an error names the draft (item "audit", its index) and leaves
  // `tail` where the last sealed one put it.
  Result<std::vector<AuditEntry>> seal_all(std::span<const AuditDraft> drafts,
                                           ChainTail& tail) const;

 private:
  const Clock& clock_;
  EventIdGenerator& ids_;
};

// kConflict: merge commit `c` expected its record at c.expected_version, and it is at `have`.
Error version_conflict(const MergeCommit& c, uint64_t have);

// kConflict unless the chain's tail is still what `rebuild` read it at: the entry
// `rebuilt_after`, or no entry at all when that is nullopt (replace_records' precondition).
Result<void> check_chain_unmoved(const ChainTail& tail,
                                 const std::optional<EventId>& rebuilt_after);

// StoreOptions::clock and ::ids, or the system clock and the process's generator.
const Clock& store_clock(const StoreOptions& options);
EventIdGenerator& store_ids(const StoreOptions& options);

}  // namespace backbone
