// EventStore: the port for the immutable event store and its audit log (SPEC §2). One store
// holds one environment. Backends are chosen by URL (EventStore::open):
//
//   sqlite:///abs/path.db, sqlite://relative/path.db   the embedded default (src/store/sqlite)
//   postgresql://admin@host:port/db, mysql://admin@host:port/db   database servers
//                                                      (src/store/sql, doc/store_servers.md)
//
// Every backend passes the conformance suite in tests/store/event_store_conformance.h.
//
// Contract:
//  - There is no operation that updates or deletes an event or an audit entry. The only
//    mutation is mark_processed (processed 0 -> 1).
//  - append is atomic: every event of the batch, its `ingested` audit entry and its outbox entry
//    are written, or nothing is. An id that already exists fails with kImmutable and exactly
//    "Event records are immutable and cannot be updated.", `where` naming the item.
//  - Ingest is idempotent by fingerprint: an event whose fingerprint was already ingested is not
//    stored again; the outcome names the original event and a `duplicate` audit entry is written.
//  - Audit entries form one hash chain per writer slot, each ordered by id, and the store
//    records each slot's head (audit_entry.h). One record's entries are in id order.
//  - A connection acts as one Role; what the role may not do fails with kPermissionDenied.
//
// Thread-safety: a store object is thread-safe. Several processes may open the same store.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backbone/audit_entry.h"
#include "backbone/clock.h"
#include "backbone/durability.h"
#include "backbone/event.h"
#include "backbone/event_id.h"
#include "backbone/record_key.h"
#include "backbone/result.h"
#include "backbone/role.h"

namespace backbone {

struct StoreOptions {
  std::string url;
  Role role = Role::kReader;
  Durability durability = Durability::kFsync;
  const Clock* clock = nullptr;     // nullptr: the system clock. Must outlive the store.
  EventIdGenerator* ids = nullptr;  // nullptr: the process generator. Must outlive the store.
};

struct AppendOutcome {
  EventId id;  // the stored event's id, or for a duplicate the original's id
  std::string fingerprint;
  bool duplicate = false;
};

// A point in the (timestamp, id) order of unprocessed events, for paging.
struct EventCursor {
  Timestamp timestamp;
  EventId id;
};

// A row of `records`: the projection of a record's merged events.
struct StoredRecord {
  RecordKey key;
  uint64_t version = 0;
  std::string state = "{}";           // canonical JSON object
  std::string field_versions = "{}";  // canonical JSON object: field -> version
  Timestamp updated_at;
  bool operator==(const StoredRecord&) const = default;
};

// A bucket's ownership (doc/scale_out.md): one owner at a time, and an epoch (a fencing token)
// that grows with every change of owner.
struct BucketLease {
  uint32_t bucket = 0;
  std::string owner;  // a member id; empty: free
  uint64_t epoch = 0;
  std::optional<Timestamp> changed_at;  // when its owner last changed (none: never), store clock
  // The lease itself (when it changed is not part of it).
  bool operator==(const BucketLease& o) const {
    return bucket == o.bucket && owner == o.owner && epoch == o.epoch;
  }
};
// A process that serves the environment, as its heartbeats say.
struct ClusterMember {
  std::string id;
  std::string address;  // where it serves (its HTTP API), for people and for forwarding
  uint64_t beat = 0;    // grows with every heartbeat
  bool leaving = false;
  // SHA-256 (hex) of the member's key: a secret that only the member knows, new at every start,
  // with which it signs the requests it forwards to other members (doc/scale_out.md); "" for
  // none.
  std::string key_sha256;
  std::optional<Timestamp> beat_at;  // when its last heartbeat was written, by its own clock
  bool operator==(const ClusterMember& o) const {
    return id == o.id && address == o.address && beat == o.beat && leaving == o.leaving &&
           key_sha256 == o.key_sha256;
  }
};
struct ClusterView {
  std::vector<ClusterMember> members;  // by id
  std::vector<BucketLease> leases;     // by bucket
};
// A bearer token of the environment, as its store keeps it: its SHA-256, never the token
// (doc/tokens.md).
struct StoredToken {
  std::string sha256;              // lowercase hex of the token's SHA-256; the primary key
  std::string name;                // what people call it by
  std::vector<std::string> roles;  // permission names (auth/principal.h)
  Timestamp created_at;
  std::optional<Timestamp> expires_at;    // never, when absent
  std::optional<Timestamp> last_used_at;  // as the serving processes last recorded it
  std::optional<Timestamp> revoked_at;
  bool operator==(const StoredToken&) const = default;
};
// An administrator's act, as the environment's admin audit keeps it (doc/tokens.md, "The admin
// audit"): append-only, never changed.
struct AdminActionDraft {
  Timestamp at;
  std::string actor;   // who: "token <id> (<name>)", "cli <user>@<host>"; 1-200 bytes
  std::string action;  // what: "token.create", "dlq.replay", ...; 1-64 of [a-z0-9._]
  std::string target;  // on what: a token id, an event id, an environment; up to 200 bytes
  std::optional<std::string> detail;  // a JSON object, or none
  bool operator==(const AdminActionDraft&) const = default;
};
struct AdminAction : AdminActionDraft {
  EventId id;  // time-ordered (UUIDv7), given by the store
};

// A topic's or subscription's IAM policy (doc/tokens.md, "IAM policies"): which roles its
// members hold on it, on top of their tokens' own. `bindings` is its JSON text, an array of
// {"role": ..., "members": [...]}, which the auth module reads; the store keeps it whole.
struct StoredPolicy {
  std::string resource;  // "topics/<name>" or "subscriptions/<name>"; 1-300 bytes
  std::string bindings;  // 2 bytes ("[]") to 64 KiB
  int64_t version = 0;   // 1 when first set, one more at each set (the policy's etag)
  Timestamp updated_at;
  bool operator==(const StoredPolicy&) const = default;
};

// That a token was used at a time (last_used_at moves to the latest one).
struct TokenUse {
  std::string sha256;
  Timestamp at;
};

// A compare-and-set on a bucket's lease: holds only if the bucket is still at `epoch` (and, to
// release, still the member's); then the epoch grows by one.
struct LeaseChange {
  uint32_t bucket = 0;
  uint64_t epoch = 0;
  bool claim = true;  // false: release
};
// What a merge commit claims of its record's bucket: that it is still at this epoch.
struct BucketFence {
  uint32_t bucket = 0;
  uint64_t epoch = 0;
};

// The outcome of merging one event, written atomically by commit_merge.
struct MergeCommit {
  EventId event_id;  // set processed = 1
  RecordKey record;
  uint64_t expected_version = 0;  // the record's version the decision was made on (0: absent)
  // The record's new row, when it changed. Its updated_at is set by the store: the time of the
  // commit's last audit entry (so that `rebuild` can reproduce it).
  std::optional<StoredRecord> next;
  std::vector<AuditDraft> audit;  // appended in order
  bool replay = false;            // a replayed event: processed is 1 already, and stays
  // A parked event (a gap): only its audit entries (retry_scheduled) are written, under the
  // same checks; it must be unprocessed (unless a replay), and stays so. No `next`. Fenced, it
  // cannot be parked by a process that lost its bucket after the new owner read the parked events.
  bool park = false;
  // When set, the commit holds only while the bucket is still at the epoch (kFenced otherwise):
  // a process that lost the bucket cannot commit for it, however long it was paused.
  std::optional<BucketFence> fence;
};

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Opens the store named by options.url. Does not migrate. Fails with kInvalidArgument for a
  // malformed URL or unknown scheme, kUnavailable when the backend cannot be reached.
  static Result<std::unique_ptr<EventStore>> open(const StoreOptions& options);

  // Applies every pending schema migration, in order; returns how many were applied (0 when
  // current). REQUIRES: role kMigrator.
  virtual Result<int> migrate() = 0;
  // The highest applied migration version (0 for an empty database).
  virtual Result<int> schema_version() = 0;

  // Stores `events` with processed = 0 and an `ingested` audit entry each (see the contract).
  // Each event stored (not a duplicate) also enters the outbox.
  virtual Result<std::vector<AppendOutcome>> append(std::span<const Event> events) = 0;

  // The outbox (table event_outbox; doc/pipeline.md, "The relay"): the events stored and not yet
  // known to be published. Up to `limit` events that entered it at or before `entered_by` (the
  // store's clock), in history order ((timestamp, id)).
  virtual Result<std::vector<StoredEvent>> outbox(Timestamp entered_by, size_t limit) = 0;
  // Takes events out of the outbox once the broker holds them; ids not in it are ignored. Not
  // synced on its own (SQLite: it becomes durable with the next synced write), so a crash may
  // put them back, to be published once more. REQUIRES: role kSyncWorker or kMigrator.
  virtual Result<void> published(std::span<const EventId> ids) = 0;

  virtual Result<StoredEvent> get(const EventId& id) = 0;  // kNotFound if absent
  // A record's events, ordered by (timestamp, id).
  virtual Result<std::vector<StoredEvent>> history(const RecordKey& record) = 0;
  // Up to `limit` unprocessed events after `after`, ordered by (timestamp, id).
  virtual Result<std::vector<StoredEvent>> unprocessed(size_t limit,
                                                       std::optional<EventCursor> after) = 0;
  // unprocessed(), restricted to events with a `retry_scheduled` audit entry: the events a
  // merge stage parked or found failing, which wait for a retry.
  virtual Result<std::vector<StoredEvent>> unprocessed_retrying(
      size_t limit, std::optional<EventCursor> after) = 0;
  // Sets processed from 0 to 1. Returns true if it changed, false if it was already 1.
  // kNotFound if the event does not exist. REQUIRES: role kMergeWorker or kMigrator.
  virtual Result<bool> mark_processed(const EventId& id) = 0;

  // A record's row, or nullopt when no event of it has merged yet.
  virtual Result<std::optional<StoredRecord>> get_record(const RecordKey& record) = 0;
  // Every row of `records`, ordered by (record_type, record_id); `after` pages.
  virtual Result<std::vector<StoredRecord>> scan_records(std::optional<RecordKey> after,
                                                         size_t limit) = 0;
  // The record's unprocessed events whose base_version is `base_version`, among its `window`
  // most recent events (by timestamp, id), in history order: the recent events that fit the
  // record once it reaches that version. A bounded read however long the history (the newest
  // end of idx_events_record; SPEC §2 allows no other index).
  virtual Result<std::vector<StoredEvent>> unprocessed_based_on(const RecordKey& record,
                                                                uint64_t base_version,
                                                                size_t window) = 0;
  // Commits merges, in order, and returns one result per commit. Each commit is atomic on its
  // own: it checks its fence (kFenced) and that the record is still at expected_version
  // (kConflict otherwise), writes `next`, sets the event's processed from 0 to 1 (kConflict if it
  // was already 1, unless `replay`), and appends the audit entries; or it changes nothing. A failed
  // commit leaves the others; a later commit of the same record then sees the version before it.
  // The whole call is durable when it returns (backends make it one transaction, one sync).
  // REQUIRES: role kMergeWorker or kMigrator.
  virtual std::vector<Result<std::vector<AuditEntry>>> commit_merges(
      std::span<const MergeCommit> commits) = 0;
  // Replaces every row of `records` with `rows`, in one transaction (for `rebuild`), provided
  // every chain's head is still as in `heads` (audit_heads() before the rows were computed from
  // the log); kConflict otherwise, changing nothing (something was appended meanwhile).
  // REQUIRES: role kMigrator.
  virtual Result<void> replace_records(std::span<const StoredRecord> rows,
                                       std::span<const AuditHead> heads) = 0;
  // One merge (commit_merges of one).
  Result<std::vector<AuditEntry>> commit_merge(const MergeCommit& commit) {
    return std::move(commit_merges(std::span(&commit, 1)).front());
  }

  // Bucket leases and membership (doc/scale_out.md), in the store so that a merge commit checks
  // its bucket's epoch in its own transaction. REQUIRES: role kMergeWorker or kMigrator (reads:
  // kReader too).
  // Records `count` free buckets (epoch 0) unless buckets are recorded already; returns the
  // recorded number, the same for every process.
  virtual Result<uint32_t> init_buckets(uint32_t count) = 0;
  // The member's heartbeat (its row is made at the first; `beat` grows by one each time; its
  // address and leaving flag are set), then every member and lease, in one transaction.
  virtual Result<ClusterView> beat(const ClusterMember& member) = 0;
  // Every member and lease as the store holds them, changing nothing (`backbone cluster show`).
  // REQUIRES: any role but kSyncWorker.
  virtual Result<ClusterView> cluster_view() = 0;
  // Applies the changes for `member`, in order, each on its own; returns each one's new epoch,
  // or nullopt where the compare-and-set did not hold.
  virtual Result<std::vector<std::optional<uint64_t>>> change_leases(
      const std::string& member, std::span<const LeaseChange> changes) = 0;
  // Forgets members (gone for good); buckets they own stay theirs until taken.
  virtual Result<void> forget_members(std::span<const std::string> ids) = 0;

  // Tokens (doc/tokens.md). Adding and revoking REQUIRE kMigrator (an administrator's act);
  // every role reads them; kSyncWorker and kMigrator record their use.
  // kAlreadyExists for a hash that is stored already; kInvalidArgument for a malformed row.
  virtual Result<void> add_token(const StoredToken& token) = 0;
  // Every token, revoked ones too, by creation time.
  virtual Result<std::vector<StoredToken>> tokens() = 0;
  // Sets revoked_at; false when it was revoked already (the first time stays); kNotFound.
  virtual Result<bool> revoke_token(const std::string& sha256, Timestamp at) = 0;
  // Moves each token's last_used_at to `at` where that is later.
  virtual Result<void> note_token_uses(std::span<const TokenUse> uses) = 0;

  // IAM policies. Every role reads them; setting one REQUIRES kMigrator (an administrator's
  // act). set_iam_policy replaces the policy of `resource`: with `expected_version`, only if the
  // stored one is that version (0: none is stored), else kConflict. Returns the stored row.
  // kInvalidArgument for a malformed resource or bindings.
  virtual Result<std::vector<StoredPolicy>> iam_policies() = 0;
  virtual Result<StoredPolicy> set_iam_policy(const std::string& resource,
                                              const std::string& bindings,
                                              std::optional<int64_t> expected_version,
                                              Timestamp at) = 0;

  // The admin audit. Appending REQUIRES kMigrator (an administrator's act); kMigrator and kReader
  // read it. kInvalidArgument for a malformed draft.
  virtual Result<AdminAction> append_admin_action(const AdminActionDraft& draft) = 0;
  // Up to `limit` acts in id order, after the one with id `after` (from the start when absent).
  virtual Result<std::vector<AdminAction>> admin_actions(std::optional<EventId> after,
                                                         size_t limit) = 0;

  // Appends entries to the chain, atomically, in order.
  virtual Result<std::vector<AuditEntry>> append_audit(std::span<const AuditDraft> drafts) = 0;
  virtual Result<std::vector<AuditEntry>> audit_for_event(const EventId& event_id) = 0;
  virtual Result<std::vector<AuditEntry>> audit_for_record(const RecordKey& record) = 0;
  virtual Result<std::vector<AuditEntry>> audit_by_fingerprint(const std::string& fingerprint) = 0;
  // Every writer slot's head, by slot (kAuditSlots of them).
  virtual Result<std::vector<AuditHead>> audit_heads() = 0;
  // Up to `limit` entries in id order, after the entry with id `after` (from the start when
  // absent).
  virtual Result<std::vector<AuditEntry>> scan_audit(std::optional<EventId> after,
                                                     size_t limit) = 0;
};

// The result of verify_audit_chain.
struct AuditVerifyReport {
  uint64_t entries_checked = 0;
  bool ok = true;
  std::optional<EventId> first_bad_entry;  // the first entry that does not match
  uint64_t first_bad_position = 0;         // its 0-based place in the chain
  std::string problem;                     // what did not match
  std::vector<AuditHead> heads;            // the recorded heads it checked against, by slot
};

// Called after each page of entries verified, with the report so far and the last entry's id;
// returning false stops the verification (kUnavailable, "stopped").
using AuditVerifyProgress =
    std::function<bool(const AuditVerifyReport& so_far, const EventId& last)>;

// Recomputes every fingerprint (from the event the entry names) and every slot's chain, in id
// order, up to the heads the store recorded (read first), and stops at the first entry that
// does not match or the first chain that ends before its head (doc/audit_chain.md). Store errors
// are returned as such; a mismatch is a report with ok = false.
Result<AuditVerifyReport> verify_audit_chain(EventStore& store,
                                             const AuditVerifyProgress& progress = {});

}  // namespace backbone
