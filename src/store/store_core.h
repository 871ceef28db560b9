// The rules every EventStore backend applies the same way when it writes, written once:
//
//  - AuditSealer, which seals the next entry of a writer slot's chain after its head (an id in
//    the slot above the head's, time never before the head's, chain hash over the head's) and
//    moves the head on: doc/audit_chain.md;
//  - the merge plan: how a group of merge commits is decided, in order, on what a store read
//    under its locks (plan_merges);
//  - the version conflict of a merge commit, and the check that the chain did not move on while
//    `rebuild` computed the records it replaces;
//  - the clock and id generator a store uses when StoreOptions names none;
//  - the SQL of a record's most recent events, shared by the SQL backends.
//
// Thread-safety: an AuditSealer is used by one writer at a time (it
// holds references to the store's clock and id generator, which are thread-safe).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backbone/audit_entry.h"
#include "backbone/event_store.h"

namespace backbone {

// A record's `window` most recent events, newest first (parameters: record_type, record_id,
// window): the newest end of idx_events_record, however long the history. The same in SQLite,
// PostgreSQL and MariaDB; callers select their columns from it as a derived table.
inline constexpr const char* kRecentEvents =
    "SELECT * FROM events WHERE record_type = ? AND record_id = ?"
    " ORDER BY timestamp DESC, id DESC LIMIT ?";

// Whether the event of the enclosing query on `events` has a retry_scheduled audit entry (a
// correlated subquery, by idx_audit_event). The same in SQLite, PostgreSQL and MariaDB.
inline constexpr const char* kRetryScheduledOf =
    "SELECT 1 FROM event_audit_log WHERE event_audit_log.event_id = events.id"
    " AND event_audit_log.action = 'retry_scheduled'";

class AuditSealer {
 public:
  AuditSealer(const Clock& clock, EventIdGenerator& ids) : clock_(clock), ids_(ids) {}

  // Seals `draft` after `head`, in head's slot, and moves `head` on to it.
  Result<AuditEntry> seal(const AuditDraft& draft, AuditHead& head) const;
  // Seals every draft in order; an error names the draft (item "audit", its index) and leaves
  // `head` where the last sealed one put it.
  Result<std::vector<AuditEntry>> seal_all(std::span<const AuditDraft> drafts,
                                           AuditHead& head) const;

 private:
  const Clock& clock_;
  EventIdGenerator& ids_;
};

// kConflict: merge commit `c` expected its record at c.expected_version, and it is at `have`.
Error version_conflict(const MergeCommit& c, uint64_t have);

// What a store read, under its locks, to decide a group of merge commits: each commit's
// event's processed flag (absent: no such event) and each record's version (absent: no record).
struct MergeReads {
  std::map<std::string, bool> processed;                             // event id -> processed
  std::map<std::pair<std::string, std::string>, uint64_t> versions;  // (type, id) -> version
  std::map<uint32_t, uint64_t> epochs;  // fenced bucket -> its epoch (absent: no such bucket)
};

// The buckets that the commits' fences name, each once.
std::vector<uint32_t> fenced_buckets(std::span<const MergeCommit* const> commits);

// What the group does. A refused commit changes nothing; a later commit of its record sees the
// version before it. The writes, in this order: the processed flags (0 -> 1), the audit entries
// (in chain order), and each record's last row (an upsert).
struct MergePlan {
  std::vector<Result<std::vector<AuditEntry>>> outcomes;  // one per commit, in order
  std::vector<EventId> to_mark;
  std::vector<AuditEntry> audit;
  std::vector<StoredRecord> records;  // by (record_type, record_id)
};

// The rules of EventStore::commit_merges: a fenced commit needs its bucket still at the fence's
// epoch; a commit that is not a replay needs its event
// unprocessed (and marks it processed unless it parks it); every commit needs its record at
// expected_version; its audit entries are sealed after `head` (which moves on over the accepted
// ones); its record's row (if any) takes the time of its last audit entry, or `now` when it has
// none.
MergePlan plan_merges(std::span<const MergeCommit* const> commits, MergeReads reads,
                      AuditHead& head, const AuditSealer& sealer, Timestamp now);

// kConflict unless every chain's head is still what `rebuild` read before it read the log
// (`read`): nothing was appended since (replace_records' precondition).
Result<void> check_chain_unmoved(std::span<const AuditHead> now, std::span<const AuditHead> read);

// The token table (doc/tokens.md), in the same SQL on every backend: times are integer µs, roles
// a comma-separated list.
inline constexpr const char* kTokenColumns =
    "sha256, name, roles, created_at_us, expires_at_us, last_used_at_us, revoked_at_us";
// kInvalidArgument unless `t` may be stored: a 64-digit lowercase hex hash, a name of 1-64
// printable characters, one role at least, each a lowercase word.
Result<void> check_token_row(const StoredToken& t);
// The IAM policy table, in the same SQL on every backend.
inline constexpr const char* kPolicyColumns = "resource, bindings, version, updated_at_us";
// kInvalidArgument unless a policy may be stored: a resource of 1-300 printable ASCII
// characters, bindings of 2 bytes to 64 KiB.
Result<void> check_policy_row(const std::string& resource, const std::string& bindings);
// kConflict for a set_iam_policy whose expected version is not the stored one (0: none).
Result<void> check_policy_version(const std::string& resource, std::optional<int64_t> expected,
                                  int64_t stored);
// The messages that the immutability triggers raise, the same on every backend: SPEC §2's four,
// then the admin audit's.
inline constexpr const char* kImmutableMessages[] = {
    "Event records are immutable and cannot be updated.",
    "Event records are immutable and cannot be deleted.",
    "Audit log records are immutable and cannot be updated.",
    "Audit log records are immutable and cannot be deleted.",
    "Admin audit records are immutable and cannot be updated.",
    "Admin audit records are immutable and cannot be deleted.",
};
// If `server_message` is (or contains) one of kImmutableMessages, that message.
std::optional<std::string> immutable_message(const std::string& server_message);

// The admin audit's table, in the same SQL on every backend (times in integer µs).
inline constexpr const char* kAdminAuditColumns = "id, at_us, actor, action, target, detail";
// `d` as it is stored, its detail in canonical JSON (doc/canonical_json.md), so that every
// backend gives it back alike; kInvalidArgument unless it may be stored (the limits of
// AdminActionDraft; a detail that is a JSON object).
Result<AdminActionDraft> checked_admin_action(const AdminActionDraft& d);
// A detail as a backend gave it back (PostgreSQL's jsonb spaces it), in canonical JSON.
Result<std::string> admin_detail_read(const std::string& text);
// "a,b" from {"a", "b"}, and back (spaces around each item dropped: "a, b" too).
std::string join_list(const std::vector<std::string>& items);
std::vector<std::string> split_list(std::string_view items);

// StoreOptions::clock and ::ids, or the system clock and the process's generator.
const Clock& store_clock(const StoreOptions& options);
EventIdGenerator& store_ids(const StoreOptions& options);

}  // namespace backbone
