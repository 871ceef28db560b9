#include "store/sqlite/sqlite_event_store.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "core/group_commit.h"
#include "store/sqlite/sqlite_authorizer.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/store_checks.h"
#include "store/store_core.h"

namespace backbone::sqlite {
namespace {

constexpr const char* kEventColumns =
    "id, record_type, record_id, source, timestamp, base_version, changes, full_snapshot_ref, "
    "processed";
constexpr const char* kRecordColumns =
    "record_type, record_id, version, state, field_versions, updated_at";
constexpr const char* kAuditColumns =
    "id, event_id, record_type, record_id, action, fingerprint, chain_hash, detail, created_at";

Result<StoredEvent> read_event(const Stmt& s) {
  EventDraft row;
  auto id = EventId::parse(s.text(0));
  if (!id.ok()) return make_error(Errc::kDataLoss, "stored event id: " + id.error().message);
  row.id = *id;
  row.record_type = s.text(1);
  row.record_id = s.text(2);
  row.source = s.text(3);
  row.timestamp = Timestamp::from_micros(s.integer(4));
  row.base_version = static_cast<uint64_t>(s.integer(5));
  row.changes = s.text(6);
  row.full_snapshot_ref = s.optional_text(7);
  auto e = Event::restore(row);
  if (!e.ok()) return e.error();
  return StoredEvent{std::move(*e), s.integer(8) != 0};
}

Result<AuditEntry> read_audit(const Stmt& s) {
  AuditEntry a;
  auto id = EventId::parse(s.text(0));
  auto event_id = EventId::parse(s.text(1));
  auto action = parse_audit_action(s.text(4));
  if (!id.ok() || !event_id.ok() || !action.ok()) {
    return make_error(Errc::kDataLoss, "stored audit entry " + s.text(0) + " is malformed");
  }
  a.id = *id;
  a.event_id = *event_id;
  a.record = {s.text(2), s.text(3)};
  a.action = *action;
  a.fingerprint = s.text(5);
  a.chain_hash = s.text(6);
  a.detail = s.optional_text(7);
  a.created_at = Timestamp::from_micros(s.integer(8));
  return a;
}

Result<StoredRecord> read_record(const Stmt& s) {
  StoredRecord r;
  r.key = {s.text(0), s.text(1)};
  r.version = static_cast<uint64_t>(s.integer(2));
  r.state = s.text(3);
  r.field_versions = s.text(4);
  r.updated_at = Timestamp::from_micros(s.integer(5));
  return r;
}

class SqliteEventStore final : public EventStore {
 public:
  SqliteEventStore(std::unique_ptr<SqliteDb> db, const Clock& clock, EventIdGenerator& ids)
      : db_(std::move(db)),
        path_(db_->path()),
        role_(db_->role()),
        schema_version_(db_->user_version()),
        clock_(clock),
        ids_(ids),
        sealer_(clock, ids) {}
  // What published() was told is written before the connection goes (a crash loses it).
  ~SqliteEventStore() override {
    std::lock_guard lock(mu_);
    (void)flush_published();
  }

  Result<int> migrate() override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(require_migrator(db_->role(), "migrations need"));
    std::lock_guard writer(db_->writer_lock());
    auto applied = sqlite::migrate(*db_, clock_.now().micros());
    schema_version_ = db_->user_version();
    return applied;
  }

  Result<int> schema_version() override {
    std::lock_guard lock(mu_);
    return db_->user_version();
  }

  Result<std::vector<AppendOutcome>> append(std::span<const Event> events) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    auto appended =
        in_write_txn<std::vector<AppendOutcome>>([&]() -> Result<std::vector<AppendOutcome>> {
          BACKBONE_TRY(delete_published());
          auto chain = chain_tail();
          if (!chain.ok()) return chain.error();
          std::vector<AppendOutcome> out;
          out.reserve(events.size());
          std::unordered_map<std::string, EventId> batch;  // fingerprint -> id, in this batch
          for (size_t i = 0; i < events.size(); ++i) {
            const Event& e = events[i];
            auto where = [i](Error err) { return std::move(err).at_item("events", i); };
            std::optional<EventId> original;
            if (auto it = batch.find(e.fingerprint()); it != batch.end()) {
              original = it->second;
            } else {
              auto found = find_ingested(e.fingerprint());
              if (!found.ok()) return where(found.error());
              original = *found;
            }
            AuditDraft audit{original ? *original : e.id(), e.record_key(),
                             original ? AuditAction::kDuplicate : AuditAction::kIngested,
                             e.fingerprint(), std::nullopt};
            if (!original) {
              if (auto r = insert_event(e); !r.ok()) return where(r.error());
              if (auto r = insert_outbox(e.id()); !r.ok()) return where(r.error());
              batch.emplace(e.fingerprint(), e.id());
            }
            if (auto r = insert_audit(audit, *chain); !r.ok()) return where(r.error());
            out.push_back({original ? *original : e.id(), e.fingerprint(), original.has_value()});
          }
          BACKBONE_TRY(save_head(*chain));
          return out;
        });
    if (appended.ok()) published_.clear();
    return appended;
  }

  Result<std::vector<StoredEvent>> outbox(Timestamp entered_by, size_t limit) override {
    {
      std::lock_guard lock(mu_);
      BACKBONE_TRY(check_schema());
      BACKBONE_TRY(flush_published());
    }
    std::lock_guard lock(read_mu_);
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kEventColumns +
                            " FROM events JOIN event_outbox ON event_outbox.event_id = events.id"
                            " WHERE event_outbox.created_at <= ? ORDER BY timestamp, id LIMIT ?");
    if (!s.ok()) return s.error();
    (*s)->bind(1, entered_by.micros()).bind(2, static_cast<int64_t>(limit));
    return collect<StoredEvent>(**s, read_event);
  }

  // Kept until the next write transaction, which makes them durable with its own sync.
  Result<void> published(std::span<const EventId> ids) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    // The delete comes later, with the next write: refuse now what the authorizer would then.
    if (!may_delete(db_->role(), "event_outbox")) {
      return make_error(Errc::kPermissionDenied, "access denied for role " +
                                                     std::string(role_name(db_->role())) +
                                                     ": DELETE on event_outbox is not granted");
    }
    published_.insert(published_.end(), ids.begin(), ids.end());
    return {};
  }

  Result<StoredEvent> get(const EventId& id) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kEventColumns + " FROM events WHERE id = ?");
    if (!s.ok()) return s.error();
    (*s)->bind(1, id.str());
    auto row = (*s)->step();
    if (!row.ok()) return row.error();
    if (!*row) {
      (*s)->reset();
      return make_error(Errc::kNotFound, "no event with id " + id.str());
    }
    auto e = read_event(**s);
    (*s)->reset();
    return e;
  }

  Result<std::vector<StoredEvent>> history(const RecordKey& record) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kEventColumns +
                            " FROM events WHERE record_type = ? AND record_id = ?"
                            " ORDER BY timestamp, id");
    if (!s.ok()) return s.error();
    (*s)->bind(1, record.record_type).bind(2, record.record_id);
    return collect<StoredEvent>(**s, read_event);
  }

  Result<std::vector<StoredEvent>> unprocessed(size_t limit,
                                               std::optional<EventCursor> after) override {
    return unprocessed_where("", limit, after);
  }

  Result<std::vector<StoredEvent>> unprocessed_retrying(size_t limit,
                                                        std::optional<EventCursor> after) override {
    return unprocessed_where(std::string(" AND EXISTS (") + kRetryScheduledOf + ")", limit, after);
  }

  Result<bool> mark_processed(const EventId& id) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    std::lock_guard writer(db_->writer_lock());
    auto s = db_->prepare(kMarkProcessedSql);
    if (!s.ok()) return s.error();
    BACKBONE_TRY((*s)->bind(1, id.str()).run());
    if (sqlite3_changes(db_->handle()) == 1) return true;
    auto q = db_->prepare("SELECT 1 FROM events WHERE id = ?");
    if (!q.ok()) return q.error();
    auto row = (*q)->bind(1, id.str()).step();
    (*q)->reset();
    if (!row.ok()) return row.error();
    if (!*row) return make_error(Errc::kNotFound, "no event with id " + id.str());
    return false;
  }

  Result<std::optional<StoredRecord>> get_record(const RecordKey& record) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kRecordColumns +
                            " FROM records WHERE record_type = ? AND record_id = ?");
    if (!s.ok()) return s.error();
    (*s)->bind(1, record.record_type).bind(2, record.record_id);
    auto rows = collect<StoredRecord>(**s, read_record);
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<StoredRecord>();
    return std::optional<StoredRecord>(std::move(rows->front()));
  }

  Result<std::vector<StoredRecord>> scan_records(std::optional<RecordKey> after,
                                                 size_t limit) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kRecordColumns +
                            " FROM records WHERE (record_type, record_id) > (?, ?)"
                            " ORDER BY record_type, record_id LIMIT ?");
    if (!s.ok()) return s.error();
    (*s)->bind(1, after ? after->record_type : std::string())
        .bind(2, after ? after->record_id : std::string())
        .bind(3, static_cast<int64_t>(limit));
    return collect<StoredRecord>(**s, read_record);
  }

  Result<std::vector<StoredEvent>> unprocessed_based_on(const RecordKey& record,
                                                        uint64_t base_version,
                                                        size_t window) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(
        std::string("SELECT ") + kEventColumns + " FROM (" + kRecentEvents +
        ") AS recent WHERE processed = 0 AND base_version = ? ORDER BY timestamp, id");
    if (!s.ok()) return s.error();
    (*s)->bind(1, record.record_type)
        .bind(2, record.record_id)
        .bind(3, static_cast<int64_t>(window))
        .bind(4, static_cast<int64_t>(base_version));
    return collect<StoredEvent>(**s, read_event);
  }

  // Group commit: concurrent callers queue their commits; one of them (the leader) runs every
  // queued commit in one transaction, each inside its own savepoint so that one failing
  // rolls back alone, and one COMMIT (one fsync) makes them all durable.
  std::vector<Result<std::vector<AuditEntry>>> commit_merges(
      std::span<const MergeCommit> commits) override {
    QueuedMerges mine{commits, {}};
    merge_group_.submit(mine,
                        [this](std::vector<QueuedMerges*>& group) { run_merge_group(group); });
    return std::move(mine.results);
  }

 private:
  struct QueuedMerges {
    std::span<const MergeCommit> commits;
    std::vector<Result<std::vector<AuditEntry>>> results;
  };

  // Every queued commit in one transaction: the events' processed flags and the records'
  // versions are read under the writer lock, the merge plan (store_core.h) decides each commit,
  // and its writes run.
  void run_merge_group(std::vector<QueuedMerges*>& batch) {
    std::lock_guard lock(mu_);
    auto finish = [&](const Error& e) {
      for (QueuedMerges* q : batch) q->results.assign(q->commits.size(), e);
    };
    if (auto v = check_schema(); !v.ok()) return finish(v.error());
    std::lock_guard writer(db_->writer_lock());
    if (auto b = db_->exec("BEGIN IMMEDIATE"); !b.ok()) return finish(b.error());
    auto abort = [&](const Error& e) {
      (void)db_->exec("ROLLBACK");
      finish(e);
    };
    auto chain = chain_tail();
    if (!chain.ok()) return abort(chain.error());
    std::vector<const MergeCommit*> all;
    for (QueuedMerges* q : batch) {
      for (const MergeCommit& c : q->commits) all.push_back(&c);
    }
    auto reads = merge_reads(all);
    if (!reads.ok()) return abort(reads.error());
    MergePlan plan = plan_merges(all, std::move(*reads), *chain, sealer_, clock_.now());
    if (auto w = write_merge_plan(plan); !w.ok()) return abort(w.error());
    if (auto h = save_head(*chain); !h.ok()) return abort(h.error());
    if (auto cm = db_->exec("COMMIT"); !cm.ok()) return abort(cm.error());
    size_t at = 0;
    for (QueuedMerges* q : batch) {
      q->results.clear();
      for (size_t i = 0; i < q->commits.size(); ++i) {
        q->results.push_back(std::move(plan.outcomes[at++]));
      }
    }
  }

  // The processed flags of the commits' events and their records' versions, in this
  // transaction. REQUIRES: mu_ held, a transaction open.
  Result<MergeReads> merge_reads(const std::vector<const MergeCommit*>& commits) {
    MergeReads reads;
    auto flag = db_->prepare("SELECT processed FROM events WHERE id = ?");
    if (!flag.ok()) return flag.error();
    auto version =
        db_->prepare("SELECT version FROM records WHERE record_type = ? AND record_id = ?");
    if (!version.ok()) return version.error();
    for (const MergeCommit* m : commits) {
      const std::string id = m->event_id.str();
      if (!reads.processed.count(id)) {
        auto row = (*flag)->bind(1, id).step();
        if (!row.ok()) return row.error();
        if (*row) reads.processed[id] = (*flag)->integer(0) != 0;
        (*flag)->reset();
      }
      const auto key = std::pair(m->record.record_type, m->record.record_id);
      if (!reads.versions.count(key)) {
        auto row = (*version)->bind(1, key.first).bind(2, key.second).step();
        if (!row.ok()) return row.error();
        reads.versions[key] = *row ? static_cast<uint64_t>((*version)->integer(0)) : 0;
        (*version)->reset();
      }
    }
    const std::vector<uint32_t> buckets = fenced_buckets(commits);
    if (buckets.empty()) return reads;
    auto epoch = db_->prepare("SELECT epoch FROM bucket_leases WHERE bucket = ?");
    if (!epoch.ok()) return epoch.error();
    for (uint32_t b : buckets) {
      auto row = (*epoch)->bind(1, int64_t{b}).step();
      if (!row.ok()) return row.error();
      if (*row) reads.epochs[b] = static_cast<uint64_t>((*epoch)->integer(0));
      (*epoch)->reset();
    }
    return reads;
  }

  // The plan's writes. Every writer holds the writer lock, so what merge_reads read still
  // holds. REQUIRES: mu_ held, a transaction open.
  Result<void> write_merge_plan(const MergePlan& plan) {
    auto mark = db_->prepare(kMarkProcessedSql);
    if (!mark.ok()) return mark.error();
    for (const EventId& id : plan.to_mark) BACKBONE_TRY((*mark)->bind(1, id.str()).run());
    for (const AuditEntry& e : plan.audit) BACKBONE_TRY(insert_audit_row(e));
    return write_records(plan.records, true);
  }

  // Inserts `rows`; with `upsert`, a row that exists is replaced. REQUIRES: mu_ held, a
  // transaction open.
  Result<void> write_records(std::span<const StoredRecord> rows, bool upsert) {
    auto ins = db_->prepare(std::string(kInsertRecordSql) + (upsert ? kUpsertRecordSuffix : ""));
    if (!ins.ok()) return ins.error();
    for (const StoredRecord& r : rows) BACKBONE_TRY(bind_record_row(**ins, r).run());
    return {};
  }

  // A statement without parameters, prepared once. REQUIRES: mu_ held.
  Result<void> run_cached(const std::string& sql) {
    auto s = db_->prepare(sql);
    if (!s.ok()) return s.error();
    return (*s)->run();
  }

 public:
  Result<void> replace_records(std::span<const StoredRecord> rows,
                               std::span<const AuditHead> heads) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(db_->role(), "replacing records needs"));
    auto replaced = in_write_txn<bool>([&]() -> Result<bool> {
      auto head = chain_tail();
      if (!head.ok()) return head.error();
      BACKBONE_TRY(check_chain_unmoved(std::span(&*head, 1), heads));
      BACKBONE_TRY(run_cached("DELETE FROM records"));
      BACKBONE_TRY(write_records(rows, false));
      return true;
    });
    if (!replaced.ok()) return replaced.error();
    return {};
  }

 public:
  Result<uint32_t> init_buckets(uint32_t count) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    return in_write_txn<uint32_t>([&]() -> Result<uint32_t> {
      auto n = db_->prepare("SELECT COUNT(*) FROM bucket_leases");
      if (!n.ok()) return n.error();
      auto row = (*n)->step();
      if (!row.ok()) return row.error();
      const auto recorded = static_cast<uint32_t>((*n)->integer(0));
      (*n)->reset();
      if (recorded > 0) return recorded;
      auto ins =
          db_->prepare("INSERT INTO bucket_leases (bucket, owner, epoch) VALUES (?, NULL, 0)");
      if (!ins.ok()) return ins.error();
      for (uint32_t b = 0; b < count; ++b) BACKBONE_TRY((*ins)->bind(1, int64_t{b}).run());
      return count;
    });
  }

  Result<ClusterView> beat(const ClusterMember& member) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    return in_write_txn<ClusterView>([&]() -> Result<ClusterView> {
      auto up = db_->prepare(
          "INSERT INTO cluster_members (member, address, beat, leaving, beat_at, key_sha256)"
          " VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (member) DO UPDATE SET beat = beat + 1,"
          " address = excluded.address, leaving = excluded.leaving, beat_at = excluded.beat_at,"
          " key_sha256 = excluded.key_sha256");
      if (!up.ok()) return up.error();
      BACKBONE_TRY((*up)
                       ->bind(1, member.id)
                       .bind(2, member.address)
                       .bind(3, int64_t{member.leaving ? 1 : 0})
                       .bind(4, clock_.now().micros())
                       .bind(5, member.key_sha256)
                       .run());
      return read_view(*db_);
    });
  }

  Result<ClusterView> cluster_view() override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    return read_view(**db);
  }

  // Every member and lease, read through `db`.
  static Result<ClusterView> read_view(SqliteDb& db) {
    ClusterView view;
    auto m = db.prepare(
        "SELECT member, address, beat, leaving, key_sha256, beat_at FROM cluster_members ORDER BY"
        " member");
    if (!m.ok()) return m.error();
    for (;;) {
      auto row = (*m)->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      ClusterMember& c = view.members.emplace_back();
      c.id = (*m)->text(0);
      c.address = (*m)->text(1);
      c.beat = static_cast<uint64_t>((*m)->integer(2));
      c.leaving = (*m)->integer(3) != 0;
      c.key_sha256 = (*m)->text(4);
      if (!(*m)->is_null(5)) c.beat_at = Timestamp::from_micros((*m)->integer(5));
    }
    (*m)->reset();
    auto l =
        db.prepare("SELECT bucket, owner, epoch, changed_at FROM bucket_leases ORDER BY bucket");
    if (!l.ok()) return l.error();
    for (;;) {
      auto row = (*l)->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      BucketLease& b = view.leases.emplace_back();
      b.bucket = static_cast<uint32_t>((*l)->integer(0));
      b.owner = (*l)->text(1);
      b.epoch = static_cast<uint64_t>((*l)->integer(2));
      if (!(*l)->is_null(3)) b.changed_at = Timestamp::from_micros((*l)->integer(3));
    }
    (*l)->reset();
    return view;
  }

  Result<std::vector<std::optional<uint64_t>>> change_leases(
      const std::string& member, std::span<const LeaseChange> changes) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    using Epochs = std::vector<std::optional<uint64_t>>;
    return in_write_txn<Epochs>([&]() -> Result<Epochs> {
      auto claim = db_->prepare(
          "UPDATE bucket_leases SET owner = ?, epoch = epoch + 1, changed_at = ? WHERE bucket = ?"
          " AND epoch = ?");
      auto release = db_->prepare(
          "UPDATE bucket_leases SET owner = NULL, epoch = epoch + 1, changed_at = ?"
          " WHERE bucket = ? AND epoch = ? AND owner = ?");
      const int64_t at = clock_.now().micros();
      if (!claim.ok()) return claim.error();
      if (!release.ok()) return release.error();
      Epochs out;
      for (const LeaseChange& c : changes) {
        if (c.claim) {
          BACKBONE_TRY((*claim)
                           ->bind(1, member)
                           .bind(2, at)
                           .bind(3, int64_t{c.bucket})
                           .bind(4, static_cast<int64_t>(c.epoch))
                           .run());
        } else {
          BACKBONE_TRY((*release)
                           ->bind(1, at)
                           .bind(2, int64_t{c.bucket})
                           .bind(3, static_cast<int64_t>(c.epoch))
                           .bind(4, member)
                           .run());
        }
        out.push_back(sqlite3_changes(db_->handle()) == 1 ? std::optional(c.epoch + 1)
                                                          : std::nullopt);
      }
      return out;
    });
  }

  Result<void> forget_members(std::span<const std::string> ids) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    auto done = in_write_txn<bool>([&]() -> Result<bool> {
      auto del = db_->prepare("DELETE FROM cluster_members WHERE member = ?");
      if (!del.ok()) return del.error();
      for (const std::string& id : ids) BACKBONE_TRY((*del)->bind(1, id).run());
      return true;
    });
    if (!done.ok()) return done.error();
    return {};
  }

  Result<std::vector<AuditEntry>> append_audit(std::span<const AuditDraft> drafts) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    return in_write_txn<std::vector<AuditEntry>>([&]() -> Result<std::vector<AuditEntry>> {
      auto chain = chain_tail();
      if (!chain.ok()) return chain.error();
      auto sealed = sealer_.seal_all(drafts, *chain);
      if (!sealed.ok()) return sealed.error();
      for (const AuditEntry& e : *sealed) BACKBONE_TRY(insert_audit_row(e));
      BACKBONE_TRY(save_head(*chain));
      return sealed;
    });
  }

  Result<std::vector<AuditEntry>> audit_for_event(const EventId& event_id) override {
    return audit_where("event_id = ?", event_id.str());
  }
  Result<std::vector<AuditEntry>> audit_by_fingerprint(const std::string& fp) override {
    return audit_where("fingerprint = ?", fp);
  }
  Result<std::vector<AuditEntry>> audit_for_record(const RecordKey& record) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kAuditColumns +
                            " FROM event_audit_log WHERE record_type = ? AND record_id = ?"
                            " ORDER BY id");
    if (!s.ok()) return s.error();
    (*s)->bind(1, record.record_type).bind(2, record.record_id);
    return collect<AuditEntry>(**s, read_audit);
  }

  Result<void> add_token(const StoredToken& t) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(db_->role(), "making a token needs"));
    BACKBONE_TRY(check_token_row(t));
    auto added = in_write_txn<bool>([&]() -> Result<bool> {
      auto revoked = token_revoked_at(t.sha256);
      if (!revoked.ok()) return revoked.error();
      if (*revoked)
        return make_error(Errc::kAlreadyExists, "a token with this hash exists already");
      auto s = db_->prepare(std::string("INSERT INTO api_tokens (") + kTokenColumns +
                            ") VALUES (?, ?, ?, ?, ?, ?, ?)");
      if (!s.ok()) return s.error();
      auto at = [&](int i, const std::optional<Timestamp>& v) {
        if (v) {
          (*s)->bind(i, v->micros());
        } else {
          (*s)->bind_null(i);
        }
      };
      (*s)->bind(1, t.sha256)
          .bind(2, t.name)
          .bind(3, join_list(t.roles))
          .bind(4, t.created_at.micros());
      at(5, t.expires_at);
      at(6, t.last_used_at);
      at(7, t.revoked_at);
      BACKBONE_TRY((*s)->run());
      return true;
    });
    if (!added.ok()) return added.error();
    return {};
  }

  Result<std::vector<StoredToken>> tokens() override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kTokenColumns +
                            " FROM api_tokens ORDER BY created_at_us, sha256");
    if (!s.ok()) return s.error();
    return collect<StoredToken>(**s, [](Stmt& r) -> Result<StoredToken> {
      auto at = [&](int c) -> std::optional<Timestamp> {
        if (r.is_null(c)) return std::nullopt;
        return Timestamp::from_micros(r.integer(c));
      };
      return StoredToken{
          r.text(0), r.text(1), split_list(r.text(2)), Timestamp::from_micros(r.integer(3)), at(4),
          at(5),     at(6)};
    });
  }

  Result<bool> revoke_token(const std::string& sha256, Timestamp at) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(db_->role(), "revoking a token needs"));
    return in_write_txn<bool>([&]() -> Result<bool> {
      auto revoked = token_revoked_at(sha256);
      if (!revoked.ok()) return revoked.error();
      if (!*revoked) return make_error(Errc::kNotFound, "no such token");
      if (**revoked) return false;
      auto s = db_->prepare("UPDATE api_tokens SET revoked_at_us = ? WHERE sha256 = ?");
      if (!s.ok()) return s.error();
      BACKBONE_TRY((*s)->bind(1, at.micros()).bind(2, sha256).run());
      return true;
    });
  }

  Result<std::vector<StoredPolicy>> iam_policies() override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kPolicyColumns +
                            " FROM iam_policies ORDER BY resource");
    if (!s.ok()) return s.error();
    return collect<StoredPolicy>(**s, [](Stmt& r) -> Result<StoredPolicy> {
      return StoredPolicy{r.text(0), r.text(1), r.integer(2), Timestamp::from_micros(r.integer(3))};
    });
  }

  Result<StoredPolicy> set_iam_policy(const std::string& resource, const std::string& bindings,
                                      std::optional<int64_t> expected_version,
                                      Timestamp at) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(db_->role(), "setting an IAM policy needs"));
    BACKBONE_TRY(check_policy_row(resource, bindings));
    return in_write_txn<StoredPolicy>([&]() -> Result<StoredPolicy> {
      auto q = db_->prepare("SELECT version FROM iam_policies WHERE resource = ?");
      if (!q.ok()) return q.error();
      (*q)->bind(1, resource);
      auto held = collect<int64_t>(**q, [](Stmt& r) -> Result<int64_t> { return r.integer(0); });
      if (!held.ok()) return held.error();
      const int64_t stored = held->empty() ? 0 : held->front();
      BACKBONE_TRY(check_policy_version(resource, expected_version, stored));
      auto w = db_->prepare(std::string("INSERT OR REPLACE INTO iam_policies (") + kPolicyColumns +
                            ") VALUES (?, ?, ?, ?)");
      if (!w.ok()) return w.error();
      BACKBONE_TRY(
          (*w)->bind(1, resource).bind(2, bindings).bind(3, stored + 1).bind(4, at.micros()).run());
      return StoredPolicy{resource, bindings, stored + 1, at};
    });
  }

  Result<void> note_token_uses(std::span<const TokenUse> uses) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    if (uses.empty()) return {};
    auto done = in_write_txn<bool>([&]() -> Result<bool> {
      for (const TokenUse& u : uses) {
        auto s = db_->prepare(
            "UPDATE api_tokens SET last_used_at_us = ? WHERE sha256 = ? AND"
            " (last_used_at_us IS NULL OR last_used_at_us < ?)");
        if (!s.ok()) return s.error();
        BACKBONE_TRY((*s)->bind(1, u.at.micros()).bind(2, u.sha256).bind(3, u.at.micros()).run());
      }
      return true;
    });
    if (!done.ok()) return done.error();
    return {};
  }

  // One writer at a time (BEGIN IMMEDIATE), so one chain: slot 0.
  Result<std::vector<AuditHead>> audit_heads() override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto head = read_head(**db);
    if (!head.ok()) return head.error();
    return std::vector<AuditHead>{std::move(*head)};
  }

  Result<AdminAction> append_admin_action(const AdminActionDraft& d) override {
    std::lock_guard lock(mu_);
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(db_->role(), "writing the admin audit needs"));
    auto checked = checked_admin_action(d);
    if (!checked.ok()) return checked.error();
    AdminAction a;
    static_cast<AdminActionDraft&>(a) = std::move(*checked);
    a.id = ids_.next();
    auto added = in_write_txn<bool>([&]() -> Result<bool> {
      auto st = db_->prepare(std::string("INSERT INTO admin_audit (") + kAdminAuditColumns +
                             ") VALUES (?, ?, ?, ?, ?, ?)");
      if (!st.ok()) return st.error();
      (*st)
          ->bind(1, a.id.str())
          .bind(2, a.at.micros())
          .bind(3, a.actor)
          .bind(4, a.action)
          .bind(5, a.target);
      if (a.detail) {
        (*st)->bind(6, *a.detail);
      } else {
        (*st)->bind_null(6);
      }
      BACKBONE_TRY((*st)->run());
      return true;
    });
    if (!added.ok()) return added.error();
    return a;
  }

  Result<std::vector<AdminAction>> admin_actions(std::optional<EventId> after,
                                                 size_t limit) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto st = (*db)->prepare(std::string("SELECT ") + kAdminAuditColumns +
                             " FROM admin_audit WHERE id > ? ORDER BY id LIMIT ?");
    if (!st.ok()) return st.error();
    (*st)->bind(1, after ? after->str() : std::string()).bind(2, static_cast<int64_t>(limit));
    return collect<AdminAction>(**st, [](Stmt& r) -> Result<AdminAction> {
      auto id = EventId::parse(r.text(0));
      if (!id.ok()) return make_error(Errc::kDataLoss, "admin_audit: a bad id " + r.text(0));
      AdminAction a;
      a.id = *id;
      a.at = Timestamp::from_micros(r.integer(1));
      a.actor = r.text(2);
      a.action = r.text(3);
      a.target = r.text(4);
      if (!r.is_null(5)) {
        auto detail = admin_detail_read(r.text(5));
        if (!detail.ok()) return detail.error();
        a.detail = std::move(*detail);
      }
      return a;
    });
  }

  Result<std::vector<AuditEntry>> scan_audit(std::optional<EventId> after, size_t limit) override {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kAuditColumns +
                            " FROM event_audit_log WHERE id > ? ORDER BY id LIMIT ?");
    if (!s.ok()) return s.error();
    (*s)->bind(1, after ? after->str() : std::string()).bind(2, static_cast<int64_t>(limit));
    return collect<AuditEntry>(**s, read_audit);
  }

 private:
  Result<void> check_schema() {
    return check_schema_version(path_, schema_version_, current_schema_version());
  }

  template <typename T, typename Fn>
  Result<T> in_write_txn(Fn&& body) {
    std::lock_guard writer(db_->writer_lock());
    BACKBONE_TRY(db_->exec("BEGIN IMMEDIATE"));
    Result<T> r = body();
    if (!r.ok()) {
      (void)db_->exec("ROLLBACK");
      return r;
    }
    if (auto c = db_->exec("COMMIT"); !c.ok()) {
      (void)db_->exec("ROLLBACK");
      return c.error();
    }
    return r;
  }

  // Unprocessed events after `after` that also meet `also` (" AND ..."), by (timestamp, id).
  Result<std::vector<StoredEvent>> unprocessed_where(const std::string& also, size_t limit,
                                                     std::optional<EventCursor> after) {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kEventColumns +
                            " FROM events WHERE processed = 0 AND (timestamp, id) > (?, ?)" + also +
                            " ORDER BY timestamp, id LIMIT ?");
    if (!s.ok()) return s.error();
    (*s)->bind(1, after ? after->timestamp.micros() : INT64_MIN)
        .bind(2, after ? after->id.str() : std::string())
        .bind(3, static_cast<int64_t>(limit));
    return collect<StoredEvent>(**s, read_event);
  }

  template <typename T, typename Read>
  Result<std::vector<T>> collect(Stmt& s, Read read) {
    std::vector<T> out;
    for (;;) {
      auto row = s.step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      auto item = read(s);
      if (!item.ok()) {
        s.reset();
        return item.error();
      }
      out.push_back(std::move(*item));
    }
    s.reset();
    return out;
  }

  Result<std::vector<AuditEntry>> audit_where(const char* where, const std::string& value) {
    std::lock_guard lock(read_mu_);
    BACKBONE_TRY(check_schema());
    auto db = reader();
    if (!db.ok()) return db.error();
    auto s = (*db)->prepare(std::string("SELECT ") + kAuditColumns +
                            " FROM event_audit_log WHERE " + where + " ORDER BY id");
    if (!s.ok()) return s.error();
    (*s)->bind(1, value);
    return collect<AuditEntry>(**s, read_audit);
  }

  // Whether token `sha256` exists (outer) and when it was revoked (inner), inside a write.
  Result<std::optional<std::optional<int64_t>>> token_revoked_at(const std::string& sha256) {
    auto s = db_->prepare("SELECT revoked_at_us FROM api_tokens WHERE sha256 = ?");
    if (!s.ok()) return s.error();
    (*s)->bind(1, sha256);
    auto row = (*s)->step();
    if (!row.ok()) return row.error();
    std::optional<std::optional<int64_t>> out;
    if (*row) {
      out.emplace();
      if (!(*s)->is_null(0)) *out = (*s)->integer(0);
    }
    (*s)->reset();
    return out;
  }

  // Slot 0's head, read inside the write transaction.
  Result<AuditHead> chain_tail() { return read_head(*db_); }

  static Result<AuditHead> read_head(SqliteDb& db) {
    auto s = db.prepare(
        "SELECT id, chain_hash, created_at_us, legacy_until FROM audit_heads WHERE slot = 0");
    if (!s.ok()) return s.error();
    auto row = (*s)->step();
    if (!row.ok()) return row.error();
    if (!*row) return make_error(Errc::kDataLoss, "audit_heads has no row for slot 0");
    AuditHead head;
    auto id = [&](int column) -> Result<std::optional<EventId>> {
      if ((*s)->is_null(column)) return std::optional<EventId>();
      auto parsed = EventId::parse((*s)->text(column));
      if (!parsed.ok()) return make_error(Errc::kDataLoss, "audit head has a malformed id");
      return std::optional<EventId>(*parsed);
    };
    auto last = id(0);
    auto legacy = id(3);
    if (last.ok() && legacy.ok()) {
      head.id = last->value_or(EventId());
      head.chain_hash = (*s)->text(1);
      head.created_at = Timestamp::from_micros((*s)->integer(2));
      head.legacy_until = *legacy;
    }
    (*s)->reset();
    if (!last.ok()) return last.error();
    if (!legacy.ok()) return legacy.error();
    return head;
  }

  // Records slot 0's head, in the write transaction that moved it.
  Result<void> save_head(const AuditHead& head) {
    if (head.empty()) return {};
    auto s = db_->prepare(
        "UPDATE audit_heads SET id = ?, chain_hash = ?, created_at_us = ? WHERE slot = 0");
    if (!s.ok()) return s.error();
    return (*s)
        ->bind(1, head.id.str())
        .bind(2, head.chain_hash)
        .bind(3, head.created_at.micros())
        .run();
  }

  Result<std::optional<EventId>> find_ingested(const std::string& fingerprint) {
    auto s = db_->prepare(
        "SELECT event_id FROM event_audit_log WHERE fingerprint = ? AND action = 'ingested'"
        " LIMIT 1");
    if (!s.ok()) return s.error();
    auto row = (*s)->bind(1, fingerprint).step();
    if (!row.ok()) return row.error();
    std::optional<EventId> out;
    if (*row) {
      auto id = EventId::parse((*s)->text(0));
      if (id.ok()) out = *id;
    }
    (*s)->reset();
    return out;
  }

  Result<void> insert_event(const Event& e) {
    auto s = db_->prepare(kInsertEventSql);
    if (!s.ok()) return s.error();
    return bind_event_row(**s, e).run();
  }

  Result<void> insert_outbox(const EventId& id) {
    auto s = db_->prepare(kInsertOutboxSql);
    if (!s.ok()) return s.error();
    return (*s)->bind(1, id.str()).bind(2, clock_.now().micros()).run();
  }

  // Inside a write transaction (mu_ held): takes what published() was told out of the outbox;
  // the caller forgets it once the transaction committed.
  Result<void> delete_published() {
    if (published_.empty()) return {};
    auto s = db_->prepare("DELETE FROM event_outbox WHERE event_id = ?");
    if (!s.ok()) return s.error();
    for (const EventId& id : published_) BACKBONE_TRY((*s)->bind(1, id.str()).run());
    return {};
  }

  // What published() was told, in a transaction of its own (mu_ held).
  Result<void> flush_published() {
    if (published_.empty()) return {};
    auto done = in_write_txn<bool>([&]() -> Result<bool> {
      BACKBONE_TRY(delete_published());
      return true;
    });
    if (!done.ok()) return done.error();
    published_.clear();
    return {};
  }

  Result<void> insert_audit_row(const AuditEntry& entry) {
    auto s = db_->prepare(kInsertAuditSql);
    if (!s.ok()) return s.error();
    return bind_audit_row(**s, entry).run();
  }

  // Seals `draft` after `tail`, inserts it, and moves `tail` on.
  Result<AuditEntry> insert_audit(const AuditDraft& draft, AuditHead& tail) {
    auto entry = sealer_.seal(draft, tail);
    if (!entry.ok()) return entry.error();
    BACKBONE_TRY(insert_audit_row(*entry));
    return entry;
  }

  // The connection for reads, opened at first use. In WAL mode it reads the last commit while
  // the writing connection holds a transaction open, so reads never wait for a commit's sync.
  Result<SqliteDb*> reader() {
    if (!reader_) {
      auto db = SqliteDb::open(path_, role_, Durability::kRelaxed);
      if (!db.ok()) return db.error();
      reader_ = std::move(*db);
    }
    return reader_.get();
  }

  std::mutex mu_;
  std::unique_ptr<SqliteDb> db_;    // GUARDED_BY(mu_): writes, and reads inside a write
  std::vector<EventId> published_;  // GUARDED_BY(mu_): to take out of the outbox
  std::mutex read_mu_;
  std::unique_ptr<SqliteDb> reader_;  // GUARDED_BY(read_mu_)
  const std::string path_;
  const Role role_;
  std::atomic<int> schema_version_;  // the writing connection's user_version
  GroupCommit<QueuedMerges> merge_group_;
  const Clock& clock_;
  EventIdGenerator& ids_;
  AuditSealer sealer_;
};

}  // namespace

Result<std::unique_ptr<EventStore>> open_sqlite_store(const std::string& path,
                                                      const StoreOptions& options) {
  auto db = SqliteDb::open(path, options.role, options.durability);
  if (!db.ok()) return db.error();
  return std::unique_ptr<EventStore>(
      new SqliteEventStore(std::move(*db), store_clock(options), store_ids(options)));
}

}  // namespace backbone::sqlite
