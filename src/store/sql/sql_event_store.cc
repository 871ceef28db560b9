#include "store/sql/sql_event_store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/group_commit.h"
#include "store/sql/connection_pool.h"
#include "store/sql/sql_dialect.h"
#include "store/sql/sql_login.h"
#include "store/sql/sql_lookups.h"
#include "store/sql/sql_row_decode.h"
#include "store/sql/sql_rows.h"
#include "store/store_checks.h"
#include "store/store_core.h"

namespace backbone::sql {
namespace {

constexpr const char* kSchemaComment = "backbone schema ";
constexpr const char* kMinId = "00000000-0000-0000-0000-000000000000";
// How many slots above its first a store's concurrent writes may take (slot_from_).
constexpr uint32_t kSlotsAbove = 16;

class ServerEventStore final : public EventStore {
 public:
  ServerEventStore(const SqlDialect& dialect, StoreUrl url, ServerStoreSettings settings, Role role,
                   const Clock& clock, EventIdGenerator& ids)
      : dialect_(dialect),
        url_(std::move(url)),
        settings_(std::move(settings)),
        role_(role),
        clock_(clock),
        ids_(ids),
        sealer_(clock, ids),
        slot_from_(std::random_device{}() % (kAuditSlots - kSlotsAbove)),
        pool_([this] { return dialect_.connect(role_login(url_, settings_, role_)); },
              settings_.pool_size),
        event_columns_(event_columns(dialect_)),
        audit_columns_(audit_columns(dialect_)),
        record_columns_(record_columns(dialect_)) {}

  // Connects once (without retrying) and reads the schema version.
  Result<void> start() {
    auto lease = pool_.acquire();
    if (!lease.ok()) return lease.error();
    auto v = read_schema_version(&**lease);
    if (!v.ok()) return v.error();
    schema_version_ = *v;
    return {};
  }

  Result<int> migrate() override {
    BACKBONE_TRY(require_migrator(role_, "migrations need"));
    auto lease = pool_.acquire();
    if (!lease.ok()) return lease.error();
    SqlConnection& c = **lease;
    // Under the writer lock: PostgreSQL refuses two sessions' CREATE TABLE IF NOT EXISTS of one
    // table at once (processes that start together migrate together).
    BACKBONE_TRY(dialect_.begin_locked(c));
    if (auto made = c.exec(dialect_.create_migrations_table()); !made.ok()) {
      (void)dialect_.end_locked(c, false);
      return made.error();
    }
    BACKBONE_TRY(dialect_.end_locked(c, true));
    int applied = 0;
    for (const SqlMigration& m : dialect_.migrations()) {
      BACKBONE_TRY(dialect_.begin_locked(c));
      auto step = [&]() -> Result<void> {
        const SqlParam version[] = {std::to_string(m.version)};
        auto done = c.run("SELECT 1 FROM schema_migrations WHERE version = ?", version);
        if (!done.ok()) return done.error();
        if (!done->rows.empty()) return {};
        for (const std::string& statement : m.statements) BACKBONE_TRY(c.exec(statement));
        BACKBONE_TRY(
            c.exec(dialect_.set_events_comment(kSchemaComment + std::to_string(m.version))));
        const SqlParam row[] = {std::to_string(m.version), m.name, sql_time(clock_.now())};
        auto ins = c.run(
            "INSERT INTO schema_migrations (version, name, applied_at)"
            " VALUES (?, ?, ?)",
            row);
        if (!ins.ok()) return ins.error();
        ++applied;
        return {};
      }();
      if (!step.ok()) {
        (void)dialect_.end_locked(c, false);
        return step.error();
      }
      BACKBONE_TRY(dialect_.end_locked(c, true));
    }
    // The other roles' table privileges; a role whose login does not exist yet is skipped
    // (`backbone db grant` creates it and grants them). GRANT is idempotent, and PostgreSQL
    // refuses two processes' GRANTs on one table at once ("tuple concurrently updated"): such a
    // refusal is tried again.
    for (Role r : {Role::kSyncWorker, Role::kMergeWorker, Role::kReader}) {
      for (const std::string& g :
           dialect_.grant_table_privileges(r, role_login_name(r, settings_), url_.database)) {
        Result<void> granted;
        for (int attempt = 0; attempt < 20; ++attempt) {
          granted = c.exec(g);
          if (granted.ok() ||
              granted.error().message.find("concurrently updated") == std::string::npos) {
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(10 + 10 * attempt));
        }
        if (!granted.ok() && !dialect_.is_unknown_login(granted.error())) return granted.error();
      }
    }
    auto v = read_schema_version(&c);
    if (!v.ok()) return v.error();
    schema_version_ = *v;
    return applied;
  }

  Result<int> schema_version() override { return read_schema_version(); }

  Result<std::vector<AppendOutcome>> append(std::span<const Event> events) override {
    BACKBONE_TRY(check_schema());
    if (events.empty()) return std::vector<AppendOutcome>{};
    // The fingerprints already ingested are read under a lock per fingerprint, so that two
    // writers cannot both store one change; a reused id is left to the primary key, which
    // refuses the whole batch (then found_taken_id names the item).
    std::vector<std::string> fingerprints;
    fingerprints.reserve(events.size());
    for (const Event& e : events) fingerprints.push_back(e.fingerprint());
    Locks locks;
    locks.keys = key_locks(fingerprints);
    locks.slot = true;
    const std::vector<SetLookup> lookups = {ingested_lookup(dialect_, std::move(fingerprints))};
    using Outcomes = std::vector<AppendOutcome>;
    // Decides the batch on what was read: which events are duplicates, their audit entries
    // sealed after the slot's head, and the INSERTs.
    auto plan_on = [&](const Reads& reads) -> Result<Plan<Outcomes>> {
      std::unordered_set<std::string> taken;  // ids stored by this batch
      std::unordered_map<std::string, EventId> originals = reads.ingested;
      AuditHead head = reads.head;
      Plan<Outcomes> plan;
      plan.value.reserve(events.size());
      std::vector<const Event*> fresh;
      std::vector<AuditEntry> audit;
      audit.reserve(events.size());
      for (size_t i = 0; i < events.size(); ++i) {
        const Event& e = events[i];
        auto it = originals.find(e.fingerprint());
        const bool duplicate = it != originals.end();
        if (!duplicate) {
          if (!taken.insert(e.id().str()).second) {
            return make_error(Errc::kImmutable, kImmutableMessages[0]).at_item("events", i);
          }
          originals.emplace(e.fingerprint(), e.id());
          fresh.push_back(&e);
        }
        const EventId id = duplicate ? it->second : e.id();
        AuditDraft draft{id, e.record_key(),
                         duplicate ? AuditAction::kDuplicate : AuditAction::kIngested,
                         e.fingerprint(), std::nullopt};
        auto entry = sealer_.seal(draft, head);
        if (!entry.ok()) return entry.error();
        audit.push_back(std::move(*entry));
        plan.value.push_back({id, e.fingerprint(), duplicate});
      }
      insert_events(fresh, plan.writes);
      insert_outbox(fresh, plan.writes);
      insert_audit(audit, plan.writes);
      plan.marker = head;
      return plan;
    };
    // While the locks and the lookups are out, the batch is decided on a guess of what they
    // will read: no fingerprint ingested before, and the first slot from slot_from_ on, at the
    // head this store last committed to it (the usual case for one writer per store). The
    // guess is taken when the reads confirm it.
    AuditHead guessed_head;
    std::optional<Plan<Outcomes>> guess;
    auto speculate = [&] {
      guess.reset();
      if (auto head = last_head(slot_from_)) {
        guessed_head = *head;
        Reads guessed;
        guessed.head = guessed_head;
        if (auto plan = plan_on(guessed); plan.ok()) guess = std::move(*plan);
      }
    };
    auto appended = write<Outcomes>(
        locks, lookups,
        [&](SqlConnection&, const Reads& reads) -> Result<Plan<Outcomes>> {
          if (guess && reads.ingested.empty() && guessed_head.slot == reads.head.slot &&
              guessed_head.id == reads.head.id &&
              guessed_head.chain_hash == reads.head.chain_hash) {
            return *std::exchange(guess, std::nullopt);
          }
          return plan_on(reads);
        },
        speculate);
    if (appended.ok() || appended.code() != Errc::kConflict) return appended;
    return found_taken_id(events, appended.error());
  }

  Result<std::vector<StoredEvent>> outbox(Timestamp entered_by, size_t limit) override {
    BACKBONE_TRY(check_schema());
    const SqlParam p[] = {sql_time(entered_by), std::to_string(limit)};
    return events_where(
        "id IN (SELECT event_id FROM event_outbox WHERE created_at <= ?)"
        " ORDER BY timestamp, id LIMIT ?",
        p);
  }

  // No lock: the outbox is not part of the chain, and each DELETE stands alone.
  Result<void> published(std::span<const EventId> ids) override {
    BACKBONE_TRY(check_schema());
    for (size_t at = 0; at < ids.size(); at += kMaxRowsPerStatement) {
      const size_t n = std::min(kMaxRowsPerStatement, ids.size() - at);
      std::vector<SqlParam> p;
      p.reserve(n);
      for (size_t i = at; i < at + n; ++i) p.push_back(ids[i].str());
      auto done = retrying<bool>([&]() -> Result<bool> {
        auto lease = pool_.acquire();
        if (!lease.ok()) return lease.error();
        auto r = (**lease).run(
            "DELETE FROM event_outbox WHERE event_id IN (" + repeat_row("?", n) + ")", p);
        if (!r.ok()) return r.error();
        return true;
      });
      if (!done.ok()) return done.error();
    }
    return {};
  }

  Result<StoredEvent> get(const EventId& id) override {
    const SqlParam p[] = {id.str()};
    auto rows = query("SELECT " + event_columns_ + " FROM events WHERE id = ?", p);
    if (!rows.ok()) return rows.error();
    if (rows->rows.empty()) return make_error(Errc::kNotFound, "no event with id " + id.str());
    return read_event(rows->rows[0]);
  }

  Result<std::vector<StoredEvent>> history(const RecordKey& record) override {
    const SqlParam p[] = {record.record_type, record.record_id};
    return events_where("record_type = ? AND record_id = ? ORDER BY timestamp, id", p);
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
    BACKBONE_TRY(check_schema());
    // One UPDATE that tests and sets: no lock needed.
    return write<bool>({}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<bool>> {
      const SqlParam p[] = {id.str()};
      auto up = c.run("UPDATE events SET processed = TRUE WHERE id = ? AND processed = FALSE", p);
      if (!up.ok()) return up.error();
      if (up->affected == 1) return Plan<bool>{true, {}, std::nullopt};
      auto q = c.run("SELECT 1 FROM events WHERE id = ?", p);
      if (!q.ok()) return q.error();
      if (q->rows.empty()) return make_error(Errc::kNotFound, "no event with id " + id.str());
      return Plan<bool>{false, {}, std::nullopt};
    });
  }

  Result<std::optional<StoredRecord>> get_record(const RecordKey& record) override {
    const SqlParam p[] = {record.record_type, record.record_id};
    auto rows = query(
        "SELECT " + record_columns_ + " FROM records WHERE record_type = ? AND record_id = ?", p);
    if (!rows.ok()) return rows.error();
    if (rows->rows.empty()) return std::optional<StoredRecord>();
    auto r = read_record(rows->rows[0]);
    if (!r.ok()) return r.error();
    return std::optional<StoredRecord>(std::move(*r));
  }

  Result<std::vector<StoredRecord>> scan_records(std::optional<RecordKey> after,
                                                 size_t limit) override {
    const SqlParam p[] = {after ? after->record_type : std::string(),
                          after ? after->record_id : std::string(), std::to_string(limit)};
    auto rows = query("SELECT " + record_columns_ +
                          " FROM records WHERE record_type >= ? AND"
                          " (record_type > ? OR record_id > ?)"
                          " ORDER BY record_type, record_id LIMIT ?",
                      std::array<SqlParam, 4>{p[0], p[0], p[1], p[2]});
    if (!rows.ok()) return rows.error();
    return read_rows<StoredRecord>(*rows, read_record);
  }

  Result<std::vector<StoredEvent>> unprocessed_based_on(const RecordKey& record,
                                                        uint64_t base_version,
                                                        size_t window) override {
    const SqlParam p[] = {record.record_type, record.record_id, std::to_string(window),
                          std::to_string(base_version)};
    auto rows = query("SELECT " + event_columns_ + " FROM (" + kRecentEvents +
                          ") AS recent WHERE processed = FALSE AND base_version = ?"
                          " ORDER BY timestamp, id",
                      p);
    if (!rows.ok()) return rows.error();
    return read_rows<StoredEvent>(*rows, read_event);
  }

  std::vector<Result<std::vector<AuditEntry>>> commit_merges(
      std::span<const MergeCommit> commits) override {
    QueuedMerges mine{commits, {}};
    merge_group_.submit(mine, [this](std::vector<QueuedMerges*>& group) { run_merges(group); });
    return std::move(mine.results);
  }

  Result<void> replace_records(std::span<const StoredRecord> rows,
                               std::span<const AuditHead> heads) override {
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(role_, "replacing records needs"));
    Locks locks;
    locks.writer = true;
    auto done = write<bool>(locks, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<bool>> {
      // Every head locked: no write appends until this one ends, and none did since `heads`.
      auto now = c.run(select_heads(dialect_) + " FOR UPDATE");
      if (!now.ok()) return now.error();
      auto read = read_heads(*now);
      if (!read.ok()) return read.error();
      BACKBONE_TRY(check_chain_unmoved(*read, heads));
      Plan<bool> plan{true, {{"DELETE FROM records", {}}}, std::nullopt};
      std::vector<const StoredRecord*> all;
      all.reserve(rows.size());
      for (const StoredRecord& r : rows) all.push_back(&r);
      insert_records(all, false, plan.writes);
      return plan;
    });
    if (!done.ok()) return done.error();
    return {};
  }

  Result<uint32_t> init_buckets(uint32_t count) override {
    BACKBONE_TRY(check_schema());
    Locks locks;
    locks.writer = true;
    return write<uint32_t>(
        locks, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<uint32_t>> {
          auto n = c.run("SELECT COUNT(*) FROM bucket_leases");
          if (!n.ok()) return n.error();
          const auto recorded = static_cast<uint32_t>(to_int(n->rows.at(0).at(0)));
          if (recorded > 0) return Plan<uint32_t>{recorded, {}, std::nullopt};
          std::vector<uint32_t> buckets(count);
          for (uint32_t b = 0; b < count; ++b) buckets[b] = b;
          Plan<uint32_t> plan{count, {}, std::nullopt};
          insert_rows(
              "INSERT INTO bucket_leases (bucket, owner, epoch) VALUES ", "(?, NULL, 0)", "",
              buckets, [](uint32_t b, std::vector<SqlParam>& p) { p.push_back(std::to_string(b)); },
              plan.writes);
          return plan;
        });
  }

  Result<ClusterView> beat(const ClusterMember& member) override {
    BACKBONE_TRY(check_schema());
    return write<ClusterView>(
        {}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<ClusterView>> {
          const SqlParam row[] = {member.address, member.leaving ? "1" : "0",
                                  sql_time(clock_.now()), member.key_sha256, member.id};
          auto up = c.run(
              "UPDATE cluster_members SET beat = beat + 1, address = ?, leaving = ?, beat_at = ?,"
              " key_sha256 = ? WHERE member = ?",
              row);
          if (!up.ok()) return up.error();
          if (up->affected == 0) {
            const SqlParam fresh[] = {member.id, member.address, member.leaving ? "1" : "0",
                                      sql_time(clock_.now()), member.key_sha256};
            auto ins = c.run(
                "INSERT INTO cluster_members (member, address, beat, leaving, beat_at, key_sha256)"
                " VALUES (?, ?, 1, ?, ?, ?)",
                fresh);
            if (!ins.ok()) return ins.error();
          }
          auto view = read_view([&](const std::string& sql) { return c.run(sql); });
          if (!view.ok()) return view.error();
          return Plan<ClusterView>{std::move(*view), {}, std::nullopt};
        });
  }

  Result<ClusterView> cluster_view() override {
    return read_view([&](const std::string& sql) { return query(sql, {}); });
  }

  // Every member and lease, read with `run` (a SQL text -> its rows).
  template <class Run>
  Result<ClusterView> read_view(const Run& run) const {
    ClusterView view;
    auto members =
        run("SELECT member, address, " + dialect_.text("beat") + ", " + dialect_.text("leaving") +
            ", key_sha256, " + dialect_.text(dialect_.epoch_micros("beat_at")) +
            " FROM cluster_members ORDER BY member");
    if (!members.ok()) return members.error();
    for (const SqlRow& r : members->rows) {
      ClusterMember& m = view.members.emplace_back();
      m.id = r.at(0).value_or("");
      m.address = r.at(1).value_or("");
      m.beat = static_cast<uint64_t>(to_int(r.at(2)));
      m.leaving = to_bool(r.at(3));
      m.key_sha256 = r.at(4).value_or("");
      if (r.at(5)) m.beat_at = Timestamp::from_micros(to_int(r.at(5)));
    }
    auto leases = run("SELECT " + dialect_.text("bucket") + ", owner, " + dialect_.text("epoch") +
                      ", " + dialect_.text(dialect_.epoch_micros("changed_at")) +
                      " FROM bucket_leases ORDER BY bucket");
    if (!leases.ok()) return leases.error();
    for (const SqlRow& r : leases->rows) {
      BucketLease& l = view.leases.emplace_back();
      l.bucket = static_cast<uint32_t>(to_int(r.at(0)));
      l.owner = r.at(1).value_or("");
      l.epoch = static_cast<uint64_t>(to_int(r.at(2)));
      if (r.at(3)) l.changed_at = Timestamp::from_micros(to_int(r.at(3)));
    }
    return view;
  }

  Result<std::vector<std::optional<uint64_t>>> change_leases(
      const std::string& member, std::span<const LeaseChange> changes) override {
    BACKBONE_TRY(check_schema());
    using Epochs = std::vector<std::optional<uint64_t>>;
    // Each change is a compare-and-set of its row; a claim waits for the writes that hold the
    // row (lock_buckets) and fences those that come after.
    auto changed =
        write<Epochs>({}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<Epochs>> {
          Plan<Epochs> plan{{}, {}, std::nullopt};
          for (const LeaseChange& ch : changes) {
            const std::string bucket = std::to_string(ch.bucket), epoch = std::to_string(ch.epoch);
            Result<SqlRows> r = [&] {
              const std::string at = sql_time(clock_.now());
              if (ch.claim) {
                const SqlParam p[] = {member, at, bucket, epoch};
                return c.run(
                    "UPDATE bucket_leases SET owner = ?, epoch = epoch + 1, changed_at = ? WHERE"
                    " bucket = ? AND epoch = ?",
                    p);
              }
              const SqlParam p[] = {at, bucket, epoch, member};
              return c.run(
                  "UPDATE bucket_leases SET owner = NULL, epoch = epoch + 1, changed_at = ? WHERE"
                  " bucket = ? AND epoch = ? AND owner = ?",
                  p);
            }();
            if (!r.ok()) return r.error();
            plan.value.push_back(r->affected == 1 ? std::optional(ch.epoch + 1) : std::nullopt);
          }
          return plan;
        });
    if (!changed.ok()) return changed;
    for (size_t i = 0; i < changes.size(); ++i) {
      if (changes[i].claim && (*changed)[i]) {
        // Each chain is in id order, and one record's entries must be too, across chains: the
        // bucket's former owner wrote its last entries before this claim, so ids from here on
        // start above every head (whatever the clocks of the two processes say).
        BACKBONE_TRY(raise_ids_above_heads());
        break;
      }
    }
    return changed;
  }

  Result<void> forget_members(std::span<const std::string> ids) override {
    BACKBONE_TRY(check_schema());
    for (const std::string& id : ids) {
      const SqlParam p[] = {id};
      auto done = write<bool>({}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<bool>> {
        auto r = c.run("DELETE FROM cluster_members WHERE member = ?", p);
        if (!r.ok()) return r.error();
        return Plan<bool>{true, {}, std::nullopt};
      });
      if (!done.ok()) return done.error();
    }
    return {};
  }

  Result<std::vector<AuditEntry>> append_audit(std::span<const AuditDraft> drafts) override {
    BACKBONE_TRY(check_schema());
    if (drafts.empty()) return std::vector<AuditEntry>{};
    using Entries = std::vector<AuditEntry>;
    Locks locks;
    locks.slot = true;
    return write<Entries>(locks, {},
                          [&](SqlConnection&, const Reads& reads) -> Result<Plan<Entries>> {
                            AuditHead head = reads.head;
                            Plan<Entries> plan;
                            auto sealed = sealer_.seal_all(drafts, head);
                            if (!sealed.ok()) return sealed.error();
                            plan.value = std::move(*sealed);
                            insert_audit(plan.value, plan.writes);
                            plan.marker = head;
                            return plan;
                          });
  }

  Result<void> add_token(const StoredToken& t) override {
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(role_, "making a token needs"));
    BACKBONE_TRY(check_token_row(t));
    auto optional_us = [](const std::optional<Timestamp>& at) -> SqlParam {
      return at ? SqlParam(std::to_string(at->micros())) : SqlParam();
    };
    const SqlParam p[] = {t.sha256,
                          t.name,
                          join_list(t.roles),
                          std::to_string(t.created_at.micros()),
                          optional_us(t.expires_at),
                          optional_us(t.last_used_at),
                          optional_us(t.revoked_at)};
    auto added = write<bool>({}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<bool>> {
      auto r = c.run(std::string("INSERT INTO api_tokens (") + kTokenColumns +
                         ") VALUES (?, ?, ?, ?, ?, ?, ?)",
                     p);
      if (!r.ok()) return r.error();
      return Plan<bool>{true, {}, std::nullopt};
    });
    if (!added.ok() && added.code() == Errc::kConflict) {
      return make_error(Errc::kAlreadyExists, "a token with this hash exists already");
    }
    if (!added.ok()) return added.error();
    return {};
  }

  Result<std::vector<StoredToken>> tokens() override {
    auto rows = query(std::string("SELECT ") + token_columns_text() +
                          " FROM api_tokens ORDER BY created_at_us, sha256",
                      {});
    if (!rows.ok()) return rows.error();
    std::vector<StoredToken> out;
    out.reserve(rows->rows.size());
    for (const SqlRow& r : rows->rows) {
      auto at = [&](size_t c) -> std::optional<Timestamp> {
        if (!r.at(c)) return std::nullopt;
        return Timestamp::from_micros(to_int(r.at(c)));
      };
      out.push_back({r.at(0).value_or(""), r.at(1).value_or(""), split_list(r.at(2).value_or("")),
                     Timestamp::from_micros(to_int(r.at(3))), at(4), at(5), at(6)});
    }
    return out;
  }

  Result<bool> revoke_token(const std::string& sha256, Timestamp at) override {
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(role_, "revoking a token needs"));
    return write<bool>({}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<bool>> {
      const SqlParam p[] = {std::to_string(at.micros()), sha256};
      auto up = c.run(
          "UPDATE api_tokens SET revoked_at_us = ? WHERE sha256 = ? AND revoked_at_us IS NULL", p);
      if (!up.ok()) return up.error();
      if (up->affected == 1) return Plan<bool>{true, {}, std::nullopt};
      const SqlParam key[] = {sha256};
      auto found = c.run("SELECT 1 FROM api_tokens WHERE sha256 = ?", key);
      if (!found.ok()) return found.error();
      if (found->rows.empty()) return make_error(Errc::kNotFound, "no such token");
      return Plan<bool>{false, {}, std::nullopt};
    });
  }

  Result<void> note_token_uses(std::span<const TokenUse> uses) override {
    BACKBONE_TRY(check_schema());
    if (uses.empty()) return {};
    auto done = write<bool>({}, {}, [&](SqlConnection&, const Reads&) -> Result<Plan<bool>> {
      Plan<bool> plan{true, {}, std::nullopt};
      for (const TokenUse& u : uses) {
        const std::string at = std::to_string(u.at.micros());
        plan.writes.push_back(
            {"UPDATE api_tokens SET last_used_at_us = ? WHERE sha256 = ? AND"
             " (last_used_at_us IS NULL OR last_used_at_us < ?)",
             {at, u.sha256, at}});
      }
      return plan;
    });
    if (!done.ok()) return done.error();
    return {};
  }

  Result<std::vector<StoredPolicy>> iam_policies() override {
    auto rows =
        query(std::string("SELECT ") + kPolicyColumns + " FROM iam_policies ORDER BY resource", {});
    if (!rows.ok()) return rows.error();
    std::vector<StoredPolicy> out;
    out.reserve(rows->rows.size());
    for (const SqlRow& r : rows->rows) {
      out.push_back({r.at(0).value_or(""), r.at(1).value_or(""), to_int(r.at(2)),
                     Timestamp::from_micros(to_int(r.at(3)))});
    }
    return out;
  }

  Result<StoredPolicy> set_iam_policy(const std::string& resource, const std::string& bindings,
                                      std::optional<int64_t> expected_version,
                                      Timestamp at) override {
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(role_, "setting an IAM policy needs"));
    BACKBONE_TRY(check_policy_row(resource, bindings));
    return write<StoredPolicy>(
        {}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<StoredPolicy>> {
          const SqlParam key[] = {resource};
          // Locked: of two sets at once, the second reads the first's version. Of two first
          // sets, one fails on the key (kConflict).
          auto held = c.run("SELECT version FROM iam_policies WHERE resource = ? FOR UPDATE", key);
          if (!held.ok()) return held.error();
          const int64_t stored = held->rows.empty() ? 0 : to_int(held->rows[0].at(0));
          BACKBONE_TRY(check_policy_version(resource, expected_version, stored));
          StoredPolicy out{resource, bindings, stored + 1, at};
          Plan<StoredPolicy> plan{out, {}, std::nullopt};
          const std::string version = std::to_string(out.version), us = std::to_string(at.micros());
          if (stored == 0) {
            plan.writes.push_back({std::string("INSERT INTO iam_policies (") + kPolicyColumns +
                                       ") VALUES (?, ?, ?, ?)",
                                   {resource, bindings, version, us}});
          } else {
            plan.writes.push_back(
                {"UPDATE iam_policies SET bindings = ?, version = ?, updated_at_us = ? WHERE "
                 "resource = ?",
                 {bindings, version, us, resource}});
          }
          return plan;
        });
  }

  Result<std::vector<AuditHead>> audit_heads() override {
    auto rows = query(select_heads(dialect_), {});
    if (!rows.ok()) return rows.error();
    return read_heads(*rows);
  }

  Result<std::vector<AuditEntry>> audit_for_event(const EventId& event_id) override {
    const SqlParam p[] = {event_id.str()};
    return audit_where("event_id = ? ORDER BY id", p);
  }
  Result<std::vector<AuditEntry>> audit_for_record(const RecordKey& record) override {
    const SqlParam p[] = {record.record_type, record.record_id};
    return audit_where("record_type = ? AND record_id = ? ORDER BY id", p);
  }
  Result<std::vector<AuditEntry>> audit_by_fingerprint(const std::string& fingerprint) override {
    const SqlParam p[] = {fingerprint};
    return audit_where("fingerprint = ? ORDER BY id", p);
  }
  Result<AdminAction> append_admin_action(const AdminActionDraft& d) override {
    BACKBONE_TRY(check_schema());
    BACKBONE_TRY(require_migrator(role_, "writing the admin audit needs"));
    auto checked = checked_admin_action(d);
    if (!checked.ok()) return checked.error();
    AdminAction a;
    static_cast<AdminActionDraft&>(a) = std::move(*checked);
    a.id = ids_.next();
    const SqlParam p[] = {a.id.str(), std::to_string(a.at.micros()),
                          a.actor,    a.action,
                          a.target,   a.detail ? SqlParam(*a.detail) : SqlParam()};
    auto added = write<bool>({}, {}, [&](SqlConnection& c, const Reads&) -> Result<Plan<bool>> {
      auto r = c.run(std::string("INSERT INTO admin_audit (") + kAdminAuditColumns +
                         ") VALUES (?, ?, ?, ?, ?, ?)",
                     p);
      if (!r.ok()) return r.error();
      return Plan<bool>{true, {}, std::nullopt};
    });
    if (!added.ok()) return added.error();
    return a;
  }

  Result<std::vector<AdminAction>> admin_actions(std::optional<EventId> after,
                                                 size_t limit) override {
    const SqlParam p[] = {after ? after->str() : std::string(kMinId), std::to_string(limit)};
    auto rows =
        query(std::string("SELECT id, at_us, actor, action, target, ") + dialect_.text("detail") +
                  " FROM admin_audit WHERE id > ? ORDER BY id" + " LIMIT ?",
              p);
    if (!rows.ok()) return rows.error();
    std::vector<AdminAction> out;
    out.reserve(rows->rows.size());
    for (const SqlRow& r : rows->rows) {
      auto id = EventId::parse(r.at(0).value_or(""));
      if (!id.ok()) return make_error(Errc::kDataLoss, "admin_audit: a bad id");
      AdminAction a;
      a.id = *id;
      a.at = Timestamp::from_micros(to_int(r.at(1)));
      a.actor = r.at(2).value_or("");
      a.action = r.at(3).value_or("");
      a.target = r.at(4).value_or("");
      if (r.at(5)) {
        auto detail = admin_detail_read(*r.at(5));
        if (!detail.ok()) return detail.error();
        a.detail = std::move(*detail);
      }
      out.push_back(std::move(a));
    }
    return out;
  }

  Result<std::vector<AuditEntry>> scan_audit(std::optional<EventId> after, size_t limit) override {
    const SqlParam p[] = {after ? after->str() : std::string(kMinId), std::to_string(limit)};
    return audit_where("id > ? ORDER BY id LIMIT ?", p);
  }

 private:
  struct QueuedMerges {
    std::span<const MergeCommit> commits;
    std::vector<Result<std::vector<AuditEntry>>> results;
  };

  // After a batch was refused by a unique key (and nothing was written): the first event whose
  // id exists already, as kImmutable with SPEC §2's message; else `refusal` itself.
  Result<std::vector<AppendOutcome>> found_taken_id(std::span<const Event> events,
                                                    const Error& refusal) {
    for (size_t at = 0; at < events.size(); at += kMaxRowsPerStatement) {
      const size_t n = std::min(kMaxRowsPerStatement, events.size() - at);
      std::vector<SqlParam> ids;
      for (size_t i = at; i < at + n; ++i) ids.push_back(events[i].id().str());
      auto rows = query(
          "SELECT " + dialect_.text("id") + " FROM events WHERE id IN (" + repeat_row("?", n) + ")",
          ids);
      if (!rows.ok()) return rows.error();
      std::unordered_set<std::string> taken;
      for (const SqlRow& r : rows->rows) taken.insert(r.front().value_or(""));  // SELECT id
      for (size_t i = at; i < at + n; ++i) {
        if (taken.count(events[i].id().str())) {
          return make_error(Errc::kImmutable, kImmutableMessages[0]).at_item("events", i);
        }
      }
    }
    return refusal;
  }

  // --- reads ---

  // The token columns, each as text (the times are read back as integers).
  std::string token_columns_text() const {
    std::string out;
    for (const std::string& c : split_list(kTokenColumns)) {
      out += (out.empty() ? "" : ", ") + dialect_.text(c);
    }
    return out;
  }

  Result<SqlRows> query(const std::string& sql, std::span<const SqlParam> params) {
    BACKBONE_TRY(check_schema());
    return retrying<SqlRows>([&]() -> Result<SqlRows> {
      auto lease = pool_.acquire();
      if (!lease.ok()) return lease.error();
      return (*lease)->run(sql, params);
    });
  }

  Result<std::vector<StoredEvent>> events_where(const std::string& where,
                                                std::span<const SqlParam> params) {
    auto rows = query("SELECT " + event_columns_ + " FROM events WHERE " + where, params);
    if (!rows.ok()) return rows.error();
    return read_rows<StoredEvent>(*rows, read_event);
  }

  Result<std::vector<AuditEntry>> audit_where(const std::string& where,
                                              std::span<const SqlParam> params) {
    auto rows = query("SELECT " + audit_columns_ + " FROM event_audit_log WHERE " + where, params);
    if (!rows.ok()) return rows.error();
    return read_rows<AuditEntry>(*rows, read_audit);
  }

  Result<int> read_schema_version(SqlConnection* on = nullptr) {
    auto read = [&](SqlConnection& c) -> Result<int> {
      auto rows = c.run(dialect_.events_comment_query());
      if (!rows.ok()) return rows.error();
      if (rows->rows.empty() || !rows->rows[0][0]) return 0;
      const std::string& comment = *rows->rows[0][0];
      if (comment.rfind(kSchemaComment, 0) != 0) return 0;
      return std::atoi(comment.c_str() + std::char_traits<char>::length(kSchemaComment));
    };
    if (on) return read(*on);
    return retrying<int>([&]() -> Result<int> {
      auto lease = pool_.acquire();
      if (!lease.ok()) return lease.error();
      return read(**lease);
    });
  }

  // Unprocessed events after `after` that also meet `also` (" AND ..."), by (timestamp, id).
  Result<std::vector<StoredEvent>> unprocessed_where(const std::string& also, size_t limit,
                                                     std::optional<EventCursor> after) {
    const SqlParam p[] = {sql_time(after ? after->timestamp : Timestamp::from_micros(0)),
                          after ? after->id.str() : std::string(kMinId), std::to_string(limit)};
    // The row comparison spelled out, so that both servers use idx_events_processed.
    return events_where("processed = FALSE AND timestamp >= ? AND (timestamp > ? OR id > ?)" +
                            also + " ORDER BY timestamp, id LIMIT ?",
                        std::array<SqlParam, 4>{p[0], p[0], p[1], p[2]});
  }

  Result<void> check_schema() {
    return check_schema_version(url_.scheme + "://" + url_.host + "/" + url_.database,
                                schema_version_, dialect_.migrations().back().version);
  }

  // --- writes ---

  // Runs `op` again while it fails with kUnavailable (a lost connection, a deadlock), with
  // backoff, for up to reconnect_timeout_ms.
  template <typename T, typename Op>
  Result<T> retrying(Op&& op) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(settings_.reconnect_timeout_ms);
    auto pause = std::chrono::milliseconds(20);
    for (;;) {
      Result<T> r = op();
      if (r.ok() || r.code() != Errc::kUnavailable ||
          std::chrono::steady_clock::now() + pause > deadline) {
        return r;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    }
  }

  // What a write decided: its result, the statements that write it (run with the COMMIT in
  // one round trip), and its writer slot's new head when it appends audit entries (its marker).
  template <typename T>
  struct Plan {
    T value;
    std::vector<SqlStatement> writes;
    std::optional<AuditHead> marker;
  };
  template <typename T>
  using Planner = std::function<Result<Plan<T>>(SqlConnection&, const Reads&)>;

  // What a write transaction locks (sql_dialect.h, sql_lookups.h), in this order.
  struct Locks {
    bool writer = false;                           // the store's writer lock
    std::optional<std::vector<uint32_t>> buckets;  // lease rows, their epochs read (empty: all)
    std::vector<std::string> keys;                 // key locks: sorted, each once
    bool slot = false;                             // a writer slot, to append audit entries
  };

  // The key locks of an append's fingerprints: their first 60 bits, sorted, each once.
  static std::vector<std::string> key_locks(const std::vector<std::string>& fingerprints) {
    std::set<uint64_t> keys;
    for (const std::string& f : fingerprints) {
      keys.insert(std::stoull(f.substr(0, 15), nullptr, 16));
    }
    std::vector<std::string> out;
    out.reserve(keys.size());
    for (uint64_t k : keys) out.push_back(std::to_string(k));
    return out;
  }

  // One write transaction, in two round trips: BEGIN, the locks and `lookups` (what the
  // planner needs to decide); then the plan's writes, the slot's new head and the COMMIT. When
  // the connection is lost during the second, the transaction either committed or not: the
  // plan's marker (its last audit entry) tells which; without a marker the write runs again.
  // `meanwhile` runs while the first round trip is out (SqlConnection::run_batch). A committed
  // marker becomes its slot's head as last seen (last_head()).
  template <typename T>
  Result<T> write(const Locks& locks, const std::vector<SetLookup>& lookups,
                  const Planner<T>& planner, const std::function<void()>& meanwhile = {}) {
    std::optional<AuditHead> marker;
    std::optional<T> outcome;  // the value of the attempt whose fate is open
    return retrying<T>([&]() -> Result<T> {
      auto lease = pool_.acquire();
      if (!lease.ok()) return lease.error();
      SqlConnection& c = **lease;
      if (marker) {  // the last attempt's COMMIT was cut off: did it land?
        const SqlParam p[] = {marker->id.str()};
        auto found = c.run("SELECT 1 FROM event_audit_log WHERE id = ?", p);
        if (!found.ok()) return found.error();
        if (!found->rows.empty()) {
          saw_head(*marker);
          return std::move(*outcome);
        }
        marker.reset();
      }
      auto abort = [&](const Error& e) -> Result<T> {
        if (c.healthy()) (void)dialect_.end_locked(c, false);
        return e;
      };
      std::vector<SqlStatement> first = dialect_.begin_statements(locks.writer, locks.keys);
      const size_t begun = first.size();
      if (locks.buckets) first.push_back(lock_buckets(dialect_, *locks.buckets));
      const size_t slot_at = first.size();
      if (locks.slot) first.push_back(take_slot(dialect_, slot_from_));
      const size_t looked_up = first.size();
      append_lookups(dialect_, lookups, first);
      auto results = c.run_batch(first, meanwhile);
      if (!results.ok()) return abort(results.error());
      if (auto locked = dialect_.check_begun(std::span(*results).first(begun)); !locked.ok()) {
        return abort(locked.error());
      }
      auto reads = parse_lookups(std::span(*results).subspan(looked_up));
      if (!reads.ok()) return abort(reads.error());
      if (locks.buckets) read_epochs((*results)[begun], reads->merge);
      if (locks.slot) {
        auto head = read_slot((*results)[slot_at]);
        if (!head.ok()) return abort(head.error());
        if (!*head) {
          return abort(make_error(Errc::kUnavailable, "every audit writer slot from " +
                                                          std::to_string(slot_from_) +
                                                          " on is held by other writes"));
        }
        reads->head = std::move(**head);
      }
      auto plan = planner(c, *reads);
      if (!plan.ok()) return abort(plan.error());
      if (locks.slot && plan->marker) plan->writes.push_back(save_slot(*plan->marker));
      for (SqlStatement& st : dialect_.end_statements(true)) plan->writes.push_back(std::move(st));
      auto committed = c.run_batch(plan->writes);
      if (!committed.ok()) {
        if (committed.code() == Errc::kUnavailable && plan->marker) {
          marker = plan->marker;
          outcome.emplace(std::move(plan->value));
          return committed.error();
        }
        return abort(committed.error());
      }
      if (plan->marker) saw_head(*plan->marker);
      return std::move(plan->value);
    });
  }

  // Slot `slot`'s head after the last write this store committed to it (none before the first).
  std::optional<AuditHead> last_head(uint32_t slot) {
    std::lock_guard lock(heads_mu_);
    auto it = heads_.find(slot);
    if (it == heads_.end()) return std::nullopt;
    return it->second;
  }
  void saw_head(const AuditHead& head) {
    std::lock_guard lock(heads_mu_);
    auto [it, fresh] = heads_.emplace(head.slot, head);
    if (!fresh && it->second.id < head.id) it->second = head;
  }

  // Moves the id generator above every chain's head (after a claim: change_leases).
  Result<void> raise_ids_above_heads() {
    auto heads = audit_heads();
    if (!heads.ok()) return heads.error();
    for (const AuditHead& h : *heads) {
      if (!h.empty()) (void)ids_.next_after(in_audit_slot(h.id, 0xffff));
    }
    return {};
  }

  // Multi-row INSERTs of `items` (at most 256 rows each) onto `out`: `row` is one row's
  // placeholders and `bind` adds one item's parameters.
  template <typename Item, typename Bind>
  static void insert_rows(const std::string& head, const std::string& row, const std::string& tail,
                          const std::vector<Item>& items, Bind bind,
                          std::vector<SqlStatement>& out) {
    size_t at = 0;
    for (size_t n : chunk_sizes(items.size())) {
      SqlStatement st{head + repeat_row(row, n) + tail, {}};
      st.params.reserve(n * 9);
      for (size_t i = at; i < at + n; ++i) bind(items[i], st.params);
      at += n;
      out.push_back(std::move(st));
    }
  }

  static void insert_events(const std::vector<const Event*>& events,
                            std::vector<SqlStatement>& out) {
    insert_rows(
        kInsertEventsHead, kEventRow, "", events,
        [](const Event* e, std::vector<SqlParam>& p) { event_params(*e, p); }, out);
  }

  // Their outbox entries, entering it now (the clock of the store).
  void insert_outbox(const std::vector<const Event*>& events, std::vector<SqlStatement>& out) {
    const std::string now = sql_time(clock_.now());
    insert_rows(
        kInsertOutboxHead, kOutboxRow, "", events,
        [&](const Event* e, std::vector<SqlParam>& p) {
          p.push_back(e->id().str());
          p.push_back(now);
        },
        out);
  }

  static void insert_audit(const std::vector<AuditEntry>& entries, std::vector<SqlStatement>& out) {
    insert_rows(kInsertAuditHead, kAuditRow, "", entries, audit_params, out);
  }

  // Inserts `rows`; with `upsert`, a row that exists is updated.
  void insert_records(const std::vector<const StoredRecord*>& rows, bool upsert,
                      std::vector<SqlStatement>& out) {
    insert_rows(
        "INSERT INTO records (record_type, record_id, version, state, field_versions, "
        "updated_at) VALUES ",
        "(?, ?, ?, ?, ?, ?)", upsert ? dialect_.upsert_records_suffix() : std::string(), rows,
        [](const StoredRecord* r, std::vector<SqlParam>& p) {
          p.push_back(r->key.record_type);
          p.push_back(r->key.record_id);
          p.push_back(std::to_string(r->version));
          p.push_back(r->state);
          p.push_back(r->field_versions);
          p.push_back(sql_time(r->updated_at));
        },
        out);
  }

  // Every queued commit in one transaction: read the events' processed flags and the records'
  // versions once, decide each commit in order in memory (a commit that fails its checks
  // changes nothing; a later commit of its record sees the version before it), then write the
  // processed flags, the audit entries and each record's last row with three set statements.
  void run_merges(std::vector<QueuedMerges*>& group) {
    std::vector<const MergeCommit*> all;
    for (QueuedMerges* q : group) {
      for (const MergeCommit& c : q->commits) all.push_back(&c);
    }
    using Outcomes = std::vector<Result<std::vector<AuditEntry>>>;
    auto decided = [&]() -> Result<Outcomes> {
      BACKBONE_TRY(check_schema());
      // A fenced commit locks its bucket's lease row (its fence is checked on it, and a claim of
      // the bucket waits for it); a commit without a fence locks the store's writer lock and
      // every lease row, so it excludes every other merge of its record however it comes.
      Locks locks;
      locks.slot = true;
      locks.buckets = fenced_buckets(all);
      if (std::any_of(all.begin(), all.end(), [](const MergeCommit* m) { return !m->fence; })) {
        locks.writer = true;
        locks.buckets->clear();
      }
      std::vector<std::string> ids;
      std::vector<std::string> keys;  // flattened (record_type, record_id) pairs
      std::set<std::pair<std::string, std::string>> seen;
      for (const MergeCommit* m : all) {
        ids.push_back(m->event_id.str());
        if (seen.emplace(m->record.record_type, m->record.record_id).second) {
          keys.push_back(m->record.record_type);
          keys.push_back(m->record.record_id);
        }
      }
      std::vector<SetLookup> lookups = {processed_lookup(dialect_, std::move(ids)),
                                        version_lookup(dialect_, std::move(keys))};
      return write<Outcomes>(locks, lookups, [&](SqlConnection&, const Reads& reads) {
        return plan_merges(all, reads);
      });
    }();
    size_t at = 0;
    for (QueuedMerges* q : group) {
      q->results.clear();
      for (size_t i = 0; i < q->commits.size(); ++i, ++at) {
        q->results.push_back(decided.ok() ? std::move((*decided)[at])
                                          : Result<std::vector<AuditEntry>>(decided.error()));
      }
    }
  }

  using MergeOutcomes = std::vector<Result<std::vector<AuditEntry>>>;

  // The merge plan (store_core.h) on what was read under the locks, as statements: the
  // processed flags, the audit entries, and each record's last row.
  Result<Plan<MergeOutcomes>> plan_merges(const std::vector<const MergeCommit*>& commits,
                                          const Reads& reads) {
    AuditHead head = reads.head;
    MergePlan decided = backbone::plan_merges(commits, reads.merge, head, sealer_, clock_.now());
    Plan<MergeOutcomes> plan;
    plan.value = std::move(decided.outcomes);
    // Every merge of these events' records holds their buckets' rows (or all of them), so the
    // flags read above still hold; the UPDATE tests them all the same.
    size_t at = 0;
    for (size_t n : chunk_sizes(decided.to_mark.size())) {
      SqlStatement st{"UPDATE events SET processed = TRUE WHERE processed = FALSE AND id IN (" +
                          repeat_row("?", n) + ")",
                      {}};
      for (size_t i = at; i < at + n; ++i) st.params.push_back(decided.to_mark[i].str());
      at += n;
      plan.writes.push_back(std::move(st));
    }
    insert_audit(decided.audit, plan.writes);
    std::vector<const StoredRecord*> rows;
    rows.reserve(decided.records.size());
    for (const StoredRecord& row : decided.records) rows.push_back(&row);
    insert_records(rows, true, plan.writes);
    if (!decided.audit.empty()) plan.marker = head;
    return plan;
  }

  const SqlDialect& dialect_;
  const StoreUrl url_;
  const ServerStoreSettings settings_;
  const Role role_;
  const Clock& clock_;
  EventIdGenerator& ids_;
  AuditSealer sealer_;
  // The first writer slot this store's writes ask for; stores of other processes start
  // elsewhere, at random, so that their writes seldom meet on one.
  const uint32_t slot_from_;
  ConnectionPool pool_;
  std::mutex heads_mu_;
  std::map<uint32_t, AuditHead> heads_;  // guarded by heads_mu_
  const std::string event_columns_;
  const std::string audit_columns_;
  const std::string record_columns_;
  std::atomic<int> schema_version_{0};
  GroupCommit<QueuedMerges> merge_group_;
};

}  // namespace

Result<std::unique_ptr<EventStore>> open_server_store(const SqlDialect& dialect,
                                                      const StoreUrl& url,
                                                      const StoreOptions& options) {
  auto settings = server_store_settings(url);
  if (!settings.ok()) return settings.error();
  const Clock& clock = store_clock(options);
  EventIdGenerator& ids = store_ids(options);
  auto store = std::make_unique<ServerEventStore>(dialect, url, std::move(*settings), options.role,
                                                  clock, ids);
  BACKBONE_TRY(store->start());
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace backbone::sql
