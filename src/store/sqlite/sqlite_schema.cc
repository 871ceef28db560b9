#include "store/sqlite/sqlite_schema.h"

#include <string>
#include <vector>

namespace backbone::sqlite {
namespace {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Declared types follow SPEC §2 (SQLite gives CHAR/VARCHAR text affinity, TINYINT/BIGINT
// integer affinity); times are INTEGER microseconds since the Unix epoch (UTC); JSON is text
// held to json_valid(). CHECK constraints hold every row to the rules the library enforces.
constexpr const char* kV1 = R"sql(
CREATE TABLE events (
  id                CHAR(36)     NOT NULL PRIMARY KEY
                    CHECK (length(id) = 36 AND id = lower(id)),
  record_type       VARCHAR(64)  NOT NULL CHECK (length(record_type) BETWEEN 1 AND 64),
  record_id         VARCHAR(191) NOT NULL
                    CHECK (length(CAST(record_id AS BLOB)) BETWEEN 1 AND 191),
  source            VARCHAR(64)  NOT NULL CHECK (length(source) BETWEEN 1 AND 64),
  timestamp         INTEGER      NOT NULL,
  base_version      INTEGER      NOT NULL CHECK (base_version >= 0),
  changes           JSON         NOT NULL
                    CHECK (json_valid(changes) AND json_type(changes) = 'object'
                           AND length(CAST(changes AS BLOB)) <= 262144),
  full_snapshot_ref VARCHAR(512) NULL
                    CHECK (full_snapshot_ref IS NULL OR length(CAST(full_snapshot_ref AS BLOB)) <= 512),
  processed         TINYINT(1)   NOT NULL DEFAULT 0 CHECK (processed IN (0, 1))
);
CREATE INDEX idx_events_record ON events (record_type, record_id, timestamp);
CREATE INDEX idx_events_processed ON events (processed, timestamp);
CREATE INDEX idx_events_timestamp ON events (timestamp);

CREATE TABLE event_audit_log (
  id          CHAR(36)    NOT NULL PRIMARY KEY CHECK (length(id) = 36 AND id = lower(id)),
  event_id    CHAR(36)    NOT NULL CHECK (length(event_id) = 36),
  record_type VARCHAR(64)  NOT NULL,
  record_id   VARCHAR(191) NOT NULL,
  action      VARCHAR(32) NOT NULL CHECK (action IN ('ingested', 'merged', 'rebased', 'conflict',
                           'retry_scheduled', 'dead_lettered', 'replayed', 'duplicate')),
  fingerprint CHAR(64)    NOT NULL CHECK (length(fingerprint) = 64),
  chain_hash  CHAR(64)    NOT NULL CHECK (length(chain_hash) = 64),
  detail      JSON        NULL CHECK (detail IS NULL OR json_valid(detail)),
  created_at  INTEGER     NOT NULL
);
CREATE INDEX idx_audit_fingerprint ON event_audit_log (fingerprint);
CREATE INDEX idx_audit_record ON event_audit_log (record_type, record_id);
CREATE INDEX idx_audit_event ON event_audit_log (event_id);

CREATE TABLE records (
  record_type    VARCHAR(64)  NOT NULL,
  record_id      VARCHAR(191) NOT NULL,
  version        BIGINT       NOT NULL CHECK (version >= 0),
  state          JSON         NOT NULL CHECK (json_valid(state)),
  field_versions JSON         NOT NULL CHECK (json_valid(field_versions)),
  updated_at     INTEGER      NOT NULL,
  PRIMARY KEY (record_type, record_id)
);

-- Immutability (SPEC §2). The one exception: processed may go from 0 to 1 when every other
-- column is unchanged.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
WHEN NOT (OLD.processed = 0 AND NEW.processed = 1
          AND NEW.id IS OLD.id AND NEW.record_type IS OLD.record_type
          AND NEW.record_id IS OLD.record_id AND NEW.source IS OLD.source
          AND NEW.timestamp IS OLD.timestamp AND NEW.base_version IS OLD.base_version
          AND NEW.changes IS OLD.changes AND NEW.full_snapshot_ref IS OLD.full_snapshot_ref)
BEGIN
  SELECT RAISE(ABORT, 'Event records are immutable and cannot be updated.');
END;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
  SELECT RAISE(ABORT, 'Event records are immutable and cannot be deleted.');
END;
-- INSERT OR REPLACE would delete the old row without a DELETE trigger: refuse an existing id.
CREATE TRIGGER events_refuse_replace BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE id = NEW.id)
BEGIN
  SELECT RAISE(ABORT, 'Event records are immutable and cannot be updated.');
END;

CREATE TRIGGER audit_refuse_update BEFORE UPDATE ON event_audit_log
BEGIN
  SELECT RAISE(ABORT, 'Audit log records are immutable and cannot be updated.');
END;
CREATE TRIGGER audit_refuse_delete BEFORE DELETE ON event_audit_log
BEGIN
  SELECT RAISE(ABORT, 'Audit log records are immutable and cannot be deleted.');
END;
CREATE TRIGGER audit_refuse_replace BEFORE INSERT ON event_audit_log
WHEN EXISTS (SELECT 1 FROM event_audit_log WHERE id = NEW.id)
BEGIN
  SELECT RAISE(ABORT, 'Audit log records are immutable and cannot be updated.');
END;
)sql";

// The relay's outbox (doc/pipeline.md): events stored and not yet known to be published. The
// events waiting for a merge when it arrives enter it, so that the relay publishes them once.
constexpr const char* kV2 = R"sql(
CREATE TABLE IF NOT EXISTS event_outbox (
  event_id   CHAR(36) NOT NULL PRIMARY KEY CHECK (length(event_id) = 36),
  created_at INTEGER  NOT NULL
);
INSERT OR IGNORE INTO event_outbox (event_id, created_at)
  SELECT id, 0 FROM events WHERE processed = 0;
)sql";

// Bucket leases and membership (doc/scale_out.md): who serves which part of the environment.
constexpr const char* kV3 = R"sql(
CREATE TABLE IF NOT EXISTS bucket_leases (
  bucket INTEGER     NOT NULL PRIMARY KEY CHECK (bucket >= 0),
  owner  VARCHAR(64) NULL,
  epoch  INTEGER     NOT NULL CHECK (epoch >= 0)
);
CREATE TABLE IF NOT EXISTS cluster_members (
  member  VARCHAR(64)  NOT NULL PRIMARY KEY,
  address VARCHAR(255) NOT NULL,
  beat    INTEGER      NOT NULL,
  leaving TINYINT(1)   NOT NULL DEFAULT 0 CHECK (leaving IN (0, 1)),
  beat_at INTEGER      NOT NULL
);
)sql";

// Each member's key, for the requests members forward to each other, and when each lease last
// changed hands (doc/scale_out.md).
constexpr const char* kV4 = R"sql(
ALTER TABLE cluster_members ADD COLUMN key_sha256 VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE bucket_leases ADD COLUMN changed_at INTEGER NULL;
)sql";

// The head of each writer slot's audit chain (doc/audit_chain.md). One writer at a time here,
// so one slot; an existing log is slot 0's chain up to its newest entry (legacy_until).
constexpr const char* kV5 = R"sql(
CREATE TABLE IF NOT EXISTS audit_heads (
  slot         INTEGER  NOT NULL PRIMARY KEY CHECK (slot >= 0),
  id           CHAR(36) NULL,
  chain_hash   CHAR(64) NOT NULL CHECK (length(chain_hash) = 64),
  created_at_us INTEGER NULL,
  legacy_until CHAR(36) NULL
);
INSERT OR IGNORE INTO audit_heads (slot, id, chain_hash, created_at_us, legacy_until)
  SELECT 0, last.id, coalesce(last.chain_hash, printf('%064d', 0)), last.created_at, last.id
  FROM (SELECT 1) LEFT JOIN
       (SELECT id, chain_hash, created_at FROM event_audit_log ORDER BY id DESC LIMIT 1) AS last
       ON 1;
)sql";

// The environment's bearer tokens, as their hashes (doc/tokens.md).
constexpr const char* kV6 = R"sql(
CREATE TABLE IF NOT EXISTS api_tokens (
  sha256          CHAR(64)     NOT NULL PRIMARY KEY CHECK (length(sha256) = 64),
  name            VARCHAR(64)  NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  roles           VARCHAR(128) NOT NULL CHECK (length(roles) >= 1),
  created_at_us   INTEGER      NOT NULL,
  expires_at_us   INTEGER      NULL,
  last_used_at_us INTEGER      NULL,
  revoked_at_us   INTEGER      NULL
);
)sql";

// The administrators' acts (doc/tokens.md, "The admin audit"): who did what to what, and when.
// Append-only, like the audit log.
constexpr const char* kV7 = R"sql(
CREATE TABLE IF NOT EXISTS admin_audit (
  id      CHAR(36)     NOT NULL PRIMARY KEY CHECK (length(id) = 36),
  at_us   INTEGER      NOT NULL,
  actor   VARCHAR(200) NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  action  VARCHAR(64)  NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
  target  VARCHAR(200) NOT NULL CHECK (length(target) <= 200),
  detail  JSON         NULL CHECK (detail IS NULL OR json_valid(detail))
);
CREATE TRIGGER IF NOT EXISTS admin_audit_refuse_update BEFORE UPDATE ON admin_audit
BEGIN
  SELECT RAISE(ABORT, 'Admin audit records are immutable and cannot be updated.');
END;
CREATE TRIGGER IF NOT EXISTS admin_audit_refuse_delete BEFORE DELETE ON admin_audit
BEGIN
  SELECT RAISE(ABORT, 'Admin audit records are immutable and cannot be deleted.');
END;
CREATE TRIGGER IF NOT EXISTS admin_audit_refuse_replace BEFORE INSERT ON admin_audit
WHEN EXISTS (SELECT 1 FROM admin_audit WHERE id = NEW.id)
BEGIN
  SELECT RAISE(ABORT, 'Admin audit records are immutable and cannot be updated.');
END;
)sql";

// The IAM policies of topics and subscriptions (doc/tokens.md, "IAM policies").
constexpr const char* kV8 = R"sql(
CREATE TABLE IF NOT EXISTS iam_policies (
  resource      VARCHAR(300) NOT NULL PRIMARY KEY CHECK (length(resource) BETWEEN 1 AND 300),
  bindings      JSON         NOT NULL CHECK (json_valid(bindings)),
  version       INTEGER      NOT NULL CHECK (version >= 1),
  updated_at_us INTEGER      NOT NULL
);
)sql";

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> all = {
      {1, "events, event_audit_log, records, immutability triggers", kV1},
      {2, "event_outbox", kV2},
      {3, "bucket_leases, cluster_members", kV3},
      {4, "cluster_members.key_sha256, bucket_leases.changed_at", kV4},
      {5, "audit_heads", kV5},
      {6, "api_tokens", kV6},
      {7, "admin_audit", kV7},
      {8, "iam_policies", kV8},
  };
  return all;
}

}  // namespace

int current_schema_version() { return migrations().back().version; }

Result<int> migrate(SqliteDb& db, int64_t now_micros) {
  BACKBONE_ASSERT(db.role() == Role::kMigrator);
  BACKBONE_TRY(db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"));
  int applied = 0;
  for (const Migration& m : migrations()) {
    BACKBONE_TRY(db.exec("BEGIN IMMEDIATE"));
    auto done = [&]() -> Result<bool> {
      auto q = db.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
      if (!q.ok()) return q.error();
      (*q)->bind(1, int64_t{m.version});
      auto row = (*q)->step();
      (*q)->reset();
      return row;
    }();
    auto apply = [&]() -> Result<void> {
      if (!done.ok()) return done.error();
      if (*done) return {};
      BACKBONE_TRY(db.exec(m.sql));
      auto ins =
          db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
      if (!ins.ok()) return ins.error();
      BACKBONE_TRY((*ins)->bind(1, int64_t{m.version}).bind(2, m.name).bind(3, now_micros).run());
      BACKBONE_TRY(db.exec("PRAGMA user_version = " + std::to_string(m.version)));
      ++applied;
      return {};
    }();
    if (!apply.ok()) {
      (void)db.exec("ROLLBACK");
      return apply.error();
    }
    BACKBONE_TRY(db.exec("COMMIT"));
    if (db.user_version() < m.version) db.set_user_version_cache(m.version);
  }
  return applied;
}

}  // namespace backbone::sqlite
