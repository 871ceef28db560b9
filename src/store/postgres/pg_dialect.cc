#include "store/postgres/pg_dialect.h"

#include <algorithm>

// The PostgreSQL dialect: SPEC §2's schema in PostgreSQL's native types (uuid, timestamptz,
// jsonb, boolean), the immutability triggers, the writer and key locks as transaction-scoped
// advisory locks, and the role grants.
#include "store/postgres/pg_connection.h"
#include "store/sql/sql_dialect.h"

namespace backbone::sql {
namespace {

// Text columns compare byte by byte (COLLATE "C"), as on SQLite and MariaDB's utf8mb4_bin.
const char* const kV1Tables = R"sql(
CREATE TABLE IF NOT EXISTS events (
  id                uuid          NOT NULL PRIMARY KEY,
  record_type       varchar(64)   COLLATE "C" NOT NULL CHECK (length(record_type) >= 1),
  record_id         varchar(191)  COLLATE "C" NOT NULL
                    CHECK (octet_length(record_id) BETWEEN 1 AND 191),
  source            varchar(64)   COLLATE "C" NOT NULL CHECK (length(source) >= 1),
  timestamp         timestamptz   NOT NULL,
  base_version      bigint        NOT NULL CHECK (base_version >= 0),
  changes           jsonb         NOT NULL CHECK (jsonb_typeof(changes) = 'object'),
  full_snapshot_ref varchar(512)  COLLATE "C" NULL CHECK (octet_length(full_snapshot_ref) <= 512),
  processed         boolean       NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS idx_events_record ON events (record_type, record_id, timestamp);
CREATE INDEX IF NOT EXISTS idx_events_processed ON events (processed, timestamp);
CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events (timestamp);

CREATE TABLE IF NOT EXISTS event_audit_log (
  id          uuid         NOT NULL PRIMARY KEY,
  event_id    uuid         NOT NULL,
  record_type varchar(64)  COLLATE "C" NOT NULL,
  record_id   varchar(191) COLLATE "C" NOT NULL,
  action      varchar(32)  NOT NULL CHECK (action IN ('ingested', 'merged', 'rebased', 'conflict',
                           'retry_scheduled', 'dead_lettered', 'replayed', 'duplicate')),
  fingerprint char(64)     NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
  chain_hash  char(64)     NOT NULL CHECK (chain_hash ~ '^[0-9a-f]{64}$'),
  detail      jsonb        NULL,
  created_at  timestamptz  NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_audit_fingerprint ON event_audit_log (fingerprint);
CREATE INDEX IF NOT EXISTS idx_audit_record ON event_audit_log (record_type, record_id);
CREATE INDEX IF NOT EXISTS idx_audit_event ON event_audit_log (event_id);

CREATE TABLE IF NOT EXISTS records (
  record_type    varchar(64)  COLLATE "C" NOT NULL,
  record_id      varchar(191) COLLATE "C" NOT NULL,
  version        bigint       NOT NULL CHECK (version >= 0),
  state          jsonb        NOT NULL,
  field_versions jsonb        NOT NULL,
  updated_at     timestamptz  NOT NULL,
  PRIMARY KEY (record_type, record_id)
);
)sql";

// Immutability (SPEC §2): every UPDATE, DELETE and TRUNCATE refused with the exact messages,
// but for processed going from false to true with every other column unchanged.
const char* const kV1Triggers = R"sql(
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.processed = false AND NEW.processed = true
     AND (NEW.id, NEW.record_type, NEW.record_id, NEW.source, NEW.timestamp, NEW.base_version,
          NEW.changes, NEW.full_snapshot_ref)
         IS NOT DISTINCT FROM
         (OLD.id, OLD.record_type, OLD.record_id, OLD.source, OLD.timestamp, OLD.base_version,
          OLD.changes, OLD.full_snapshot_ref) THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'Event records are immutable and cannot be updated.';
  END IF;
  RAISE EXCEPTION 'Event records are immutable and cannot be deleted.';
END
$$;
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'Audit log records are immutable and cannot be updated.';
  END IF;
  RAISE EXCEPTION 'Audit log records are immutable and cannot be deleted.';
END
$$;
DROP TRIGGER IF EXISTS events_refuse_change ON events;
CREATE TRIGGER events_refuse_change BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
DROP TRIGGER IF EXISTS events_refuse_truncate ON events;
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
DROP TRIGGER IF EXISTS audit_refuse_change ON event_audit_log;
CREATE TRIGGER audit_refuse_change BEFORE UPDATE OR DELETE ON event_audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
DROP TRIGGER IF EXISTS audit_refuse_truncate ON event_audit_log;
CREATE TRIGGER audit_refuse_truncate BEFORE TRUNCATE ON event_audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
)sql";

// The relay's outbox (doc/pipeline.md). The events waiting for a merge when it arrives enter
// it, so that the relay publishes them once.
const char* const kV2Outbox = R"sql(
CREATE TABLE IF NOT EXISTS event_outbox (
  event_id   uuid        NOT NULL PRIMARY KEY,
  created_at timestamptz NOT NULL
);
INSERT INTO event_outbox (event_id, created_at)
  SELECT id, 'epoch' FROM events WHERE processed = false ON CONFLICT DO NOTHING;
)sql";

// Bucket leases and membership (doc/scale_out.md): who serves which part of the environment.
const char* const kV3Leases = R"sql(
CREATE TABLE IF NOT EXISTS bucket_leases (
  bucket integer     NOT NULL PRIMARY KEY CHECK (bucket >= 0),
  owner  varchar(64) COLLATE "C" NULL,
  epoch  bigint      NOT NULL CHECK (epoch >= 0)
);
CREATE TABLE IF NOT EXISTS cluster_members (
  member  varchar(64)  COLLATE "C" NOT NULL PRIMARY KEY,
  address varchar(255) NOT NULL,
  beat    bigint       NOT NULL,
  leaving boolean      NOT NULL DEFAULT false,
  beat_at timestamptz  NOT NULL
);
)sql";

// Each member's key, for the requests members forward to each other, and when each lease last
// changed hands (doc/scale_out.md).
const char* const kV4MemberKey = R"sql(
ALTER TABLE cluster_members ADD COLUMN IF NOT EXISTS key_sha256 varchar(64) COLLATE "C" NOT NULL
  DEFAULT '';
ALTER TABLE bucket_leases ADD COLUMN IF NOT EXISTS changed_at timestamptz NULL;
)sql";

// The head of each writer slot's audit chain (doc/audit_chain.md), kAuditSlots of them. An
// existing log becomes slot 0's chain up to its newest entry (legacy_until, on every row, so
// that no slot's entries go below it).
const char* const kV5AuditHeads = R"sql(
CREATE TABLE IF NOT EXISTS audit_heads (
  slot          integer  NOT NULL PRIMARY KEY CHECK (slot >= 0),
  id            uuid     NULL,
  chain_hash    char(64) NOT NULL CHECK (chain_hash ~ '^[0-9a-f]{64}$'),
  created_at_us bigint   NULL,
  legacy_until  uuid     NULL
);
INSERT INTO audit_heads (slot, chain_hash)
  SELECT s, repeat('0', 64) FROM generate_series(0, 63) AS s ON CONFLICT DO NOTHING;
UPDATE audit_heads SET legacy_until = last.id FROM
  (SELECT id FROM event_audit_log ORDER BY id DESC LIMIT 1) AS last
  WHERE audit_heads.id IS NULL AND audit_heads.legacy_until IS NULL;
UPDATE audit_heads SET id = last.id, chain_hash = last.chain_hash,
  created_at_us = (extract(epoch from last.created_at) * 1000000)::bigint FROM
  (SELECT id, chain_hash, created_at FROM event_audit_log ORDER BY id DESC LIMIT 1) AS last
  WHERE audit_heads.slot = 0 AND audit_heads.id IS NULL;
)sql";

// The environment's bearer tokens, as their hashes (doc/tokens.md).
const char* const kV6Tokens = R"sql(
CREATE TABLE IF NOT EXISTS api_tokens (
  sha256          char(64)    COLLATE "C" NOT NULL PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  name            varchar(64) COLLATE "C" NOT NULL CHECK (length(name) >= 1),
  roles           varchar(128) COLLATE "C" NOT NULL CHECK (length(roles) >= 1),
  created_at_us   bigint      NOT NULL,
  expires_at_us   bigint      NULL,
  last_used_at_us bigint      NULL,
  revoked_at_us   bigint      NULL
);
)sql";

// The administrators' acts (doc/tokens.md, "The admin audit"), append-only.
const char* const kV7AdminAudit = R"sql(
CREATE TABLE IF NOT EXISTS admin_audit (
  id      char(36)     COLLATE "C" NOT NULL PRIMARY KEY,
  at_us   bigint       NOT NULL,
  actor   varchar(200) NOT NULL CHECK (length(actor) >= 1),
  action  varchar(64)  COLLATE "C" NOT NULL CHECK (length(action) >= 1),
  target  varchar(200) NOT NULL,
  detail  jsonb        NULL
);
CREATE OR REPLACE FUNCTION admin_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'Admin audit records are immutable and cannot be updated.';
  END IF;
  RAISE EXCEPTION 'Admin audit records are immutable and cannot be deleted.';
END $$;
DROP TRIGGER IF EXISTS admin_audit_refuse_change ON admin_audit;
CREATE TRIGGER admin_audit_refuse_change BEFORE UPDATE OR DELETE ON admin_audit
  FOR EACH ROW EXECUTE FUNCTION admin_audit_refuse_change();
DROP TRIGGER IF EXISTS admin_audit_refuse_truncate ON admin_audit;
CREATE TRIGGER admin_audit_refuse_truncate BEFORE TRUNCATE ON admin_audit
  FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_refuse_change();
)sql";

// The IAM policies of topics and subscriptions (doc/tokens.md, "IAM policies").
const char* const kV8Policies = R"sql(
CREATE TABLE IF NOT EXISTS iam_policies (
  resource      varchar(300) COLLATE "C" NOT NULL PRIMARY KEY CHECK (length(resource) >= 1),
  bindings      text         NOT NULL CHECK (bindings::jsonb IS NOT NULL),
  version       bigint       NOT NULL CHECK (version >= 1),
  updated_at_us bigint       NOT NULL
);
)sql";

std::string ident(const std::string& name) { return "\"" + name + "\""; }

class PostgresDialect final : public SqlDialect {
 public:
  Result<std::unique_ptr<SqlConnection>> connect(const SqlLogin& login) const override {
    return pg::connect(login);
  }
  std::string maintenance_database() const override { return "postgres"; }

  const std::vector<SqlMigration>& migrations() const override {
    static const std::vector<SqlMigration> all = {
        {1, "events, event_audit_log, records, immutability triggers", {kV1Tables, kV1Triggers}},
        {2, "event_outbox", {kV2Outbox}},
        {3, "bucket_leases, cluster_members", {kV3Leases}},
        {4, "cluster_members.key_sha256, bucket_leases.changed_at", {kV4MemberKey}},
        {5, "audit_heads", {kV5AuditHeads}},
        {6, "api_tokens", {kV6Tokens}},
        {7, "admin_audit", {kV7AdminAudit}},
        {8, "iam_policies", {kV8Policies}},
    };
    return all;
  }
  std::string create_migrations_table() const override {
    return "CREATE TABLE IF NOT EXISTS schema_migrations (version integer NOT NULL PRIMARY KEY,"
           " name text NOT NULL, applied_at timestamptz NOT NULL)";
  }
  std::string events_comment_query() const override {
    return "SELECT obj_description(to_regclass('events'), 'pg_class')";
  }
  std::string set_events_comment(const std::string& comment) const override {
    return "COMMENT ON TABLE events IS " + literal(comment);
  }

  // Advisory locks, scoped to the transaction and to the database; no privilege needed.
  // (PostgreSQL finds a deadlock among them, should one form.)
  std::vector<SqlStatement> begin_statements(bool writer,
                                             std::span<const std::string> keys) const override {
    std::vector<SqlStatement> out = {{"BEGIN", {}}};
    if (writer) out.push_back({"SELECT pg_advisory_xact_lock(7305546280393752178)", {}});
    for (size_t at = 0; at < keys.size(); at += 256) {
      SqlStatement st{"SELECT 1", {}};
      for (size_t i = at; i < std::min(keys.size(), at + 256); ++i) {
        st.sql += ", pg_advisory_xact_lock(?::bigint)";
        st.params.push_back(keys[i]);
      }
      out.push_back(std::move(st));
    }
    return out;
  }
  Result<void> check_begun(std::span<const SqlRows>) const override { return {}; }
  std::vector<SqlStatement> end_statements(bool commit) const override {
    return {{commit ? "COMMIT" : "ROLLBACK", {}}};
  }

  std::string text(const std::string& expr) const override { return "(" + expr + ")::text"; }
  // Custom plans (plan_cache_mode, pg_connection.cc) already plan each lookup on its values.
  std::string force_index(const std::string&) const override { return ""; }
  std::string key_lookup_prefix() const override { return ""; }

  std::string epoch_micros(const std::string& column) const override {
    return "(extract(epoch from " + column + ") * 1000000)::bigint";
  }
  std::string upsert_records_suffix() const override {
    return " ON CONFLICT (record_type, record_id) DO UPDATE SET version = EXCLUDED.version,"
           " state = EXCLUDED.state, field_versions = EXCLUDED.field_versions,"
           " updated_at = EXCLUDED.updated_at";
  }

  Result<void> create_database(SqlConnection& c, const std::string& database) const override {
    const SqlParam p[] = {database};
    auto found = c.run("SELECT 1 FROM pg_database WHERE datname = ?", p);
    if (!found.ok()) return found.error();
    if (!found->rows.empty()) return {};
    auto made = c.exec("CREATE DATABASE " + ident(database) + " ENCODING 'UTF8'");
    if (!made.ok() && made.error().message.find("[42P04]") == std::string::npos) return made;
    return {};  // 42P04: made meanwhile by someone else
  }

  Result<void> drop_database(SqlConnection& c, const std::string& database) const override {
    return c.exec("DROP DATABASE IF EXISTS " + ident(database) + " WITH (FORCE)");
  }

  std::vector<std::string> ensure_login(Role role, const std::string& login,
                                        const std::string& password,
                                        const std::string& database) const override {
    std::vector<std::string> out = {
        "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = " + literal(login) +
            ") THEN CREATE ROLE " + ident(login) + "; END IF; END$$",
        "ALTER ROLE " + ident(login) +
            " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " +
            (password.empty() ? std::string("NULL") : literal(password)),
        // Only the roles granted below may connect or make temporary tables.
        "REVOKE ALL ON DATABASE " + ident(database) + " FROM PUBLIC",
        "REVOKE ALL ON DATABASE " + ident(database) + " FROM " + ident(login),
        "GRANT CONNECT ON DATABASE " + ident(database) + " TO " + ident(login),
        "REVOKE ALL ON SCHEMA public FROM " + ident(login),
        "GRANT USAGE ON SCHEMA public TO " + ident(login),
    };
    if (role == Role::kMigrator) out.push_back("GRANT CREATE ON SCHEMA public TO " + ident(login));
    return out;
  }
  std::vector<std::string> revoke_table_privileges(const std::string& login,
                                                   const std::string&) const override {
    return {
        "REVOKE ALL ON events, event_audit_log, records, event_outbox, bucket_leases,"
        " cluster_members, audit_heads, api_tokens, admin_audit, iam_policies FROM " +
        ident(login)};
  }
  std::vector<std::string> grant_table_privileges(Role role, const std::string& login,
                                                  const std::string&) const override {
    const std::string to = " TO " + ident(login);
    switch (role) {
      case Role::kMigrator:
        return {
            "GRANT ALL ON events, event_audit_log, records, event_outbox, bucket_leases,"
            " cluster_members, audit_heads, api_tokens, admin_audit, iam_policies" +
            to};
      case Role::kSyncWorker:
        return {"GRANT SELECT, INSERT ON events, event_audit_log" + to,
                "GRANT SELECT, INSERT, DELETE ON event_outbox" + to,
                "GRANT SELECT, UPDATE ON audit_heads" + to,
                "GRANT SELECT, UPDATE (last_used_at_us) ON api_tokens" + to,
                "GRANT SELECT ON iam_policies" + to};
      case Role::kMergeWorker:
        return {"GRANT SELECT, INSERT, UPDATE (processed) ON events" + to,
                "GRANT SELECT, INSERT ON event_audit_log" + to,
                "GRANT SELECT, INSERT, UPDATE ON records, bucket_leases" + to,
                "GRANT SELECT, INSERT, UPDATE, DELETE ON cluster_members" + to,
                "GRANT SELECT, UPDATE ON audit_heads" + to,
                "GRANT SELECT ON api_tokens, iam_policies" + to};
      case Role::kReader:
        return {
            "GRANT SELECT ON events, event_audit_log, records, event_outbox, bucket_leases,"
            " cluster_members, audit_heads, api_tokens, admin_audit, iam_policies" +
            to};
    }
    return {};
  }
  bool is_unknown_login(const Error& e) const override {
    return e.message.find("[42704]") != std::string::npos;
  }
  std::string literal(const std::string& s) const override {  // standard_conforming_strings
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  }
};

}  // namespace

const SqlDialect& postgres_dialect() {
  static const PostgresDialect d;
  return d;
}

}  // namespace backbone::sql
