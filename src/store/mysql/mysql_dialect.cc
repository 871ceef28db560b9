#include "store/mysql/mysql_dialect.h"

#include <algorithm>
#include <functional>

// The MySQL/MariaDB dialect: SPEC §2's schema in its exact MySQL types (CHAR(36), TIMESTAMP(6),
// JSON, TINYINT(1), BIGINT UNSIGNED), text compared byte by byte (utf8mb4_bin), the immutability
// triggers, the writer and key locks as named locks (GET_LOCK), and the role grants.
#include "store/mysql/mysql_connection.h"
#include "store/sql/sql_dialect.h"

namespace backbone::sql {
namespace {

// Every statement is idempotent: MySQL commits DDL at once, so a migration cut short is
// completed by running it again.
const std::vector<std::string>& v1() {
  static const std::vector<std::string> all = {
      R"sql(CREATE TABLE IF NOT EXISTS events (
  id                CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  record_type       VARCHAR(64)  NOT NULL,
  record_id         VARCHAR(191) NOT NULL,
  source            VARCHAR(64)  NOT NULL,
  timestamp         TIMESTAMP(6) NOT NULL,
  base_version      BIGINT UNSIGNED NOT NULL,
  changes           JSON         NOT NULL,
  full_snapshot_ref VARCHAR(512) NULL,
  processed         TINYINT(1)   NOT NULL DEFAULT 0,
  CONSTRAINT events_id_form CHECK (CHAR_LENGTH(id) = 36),
  CONSTRAINT events_names CHECK (CHAR_LENGTH(record_type) >= 1 AND CHAR_LENGTH(source) >= 1
                                 AND LENGTH(record_id) BETWEEN 1 AND 191),
  CONSTRAINT events_changes_object CHECK (JSON_TYPE(changes) = 'OBJECT'
                                          AND LENGTH(changes) <= 262144),
  CONSTRAINT events_processed_flag CHECK (processed IN (0, 1)),
  INDEX idx_events_record (record_type, record_id, timestamp),
  INDEX idx_events_processed (processed, timestamp),
  INDEX idx_events_timestamp (timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin)sql",
      R"sql(CREATE TABLE IF NOT EXISTS event_audit_log (
  id          CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  event_id    CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  record_type VARCHAR(64)  NOT NULL,
  record_id   VARCHAR(191) NOT NULL,
  action      VARCHAR(32)  NOT NULL,
  fingerprint CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  chain_hash  CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  detail      JSON         NULL,
  created_at  TIMESTAMP(6) NOT NULL,
  CONSTRAINT audit_action CHECK (action IN ('ingested', 'merged', 'rebased', 'conflict',
                                 'retry_scheduled', 'dead_lettered', 'replayed', 'duplicate')),
  CONSTRAINT audit_hashes CHECK (CHAR_LENGTH(fingerprint) = 64 AND CHAR_LENGTH(chain_hash) = 64),
  INDEX idx_audit_fingerprint (fingerprint),
  INDEX idx_audit_record (record_type, record_id),
  INDEX idx_audit_event (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin)sql",
      R"sql(CREATE TABLE IF NOT EXISTS records (
  record_type    VARCHAR(64)  NOT NULL,
  record_id      VARCHAR(191) NOT NULL,
  version        BIGINT UNSIGNED NOT NULL,
  state          JSON         NOT NULL,
  field_versions JSON         NOT NULL,
  updated_at     TIMESTAMP(6) NOT NULL,
  PRIMARY KEY (record_type, record_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin)sql",
      // Immutability (SPEC §2): processed may go from 0 to 1 with every other column unchanged.
      R"sql(CREATE TRIGGER IF NOT EXISTS events_refuse_update BEFORE UPDATE ON events FOR EACH ROW
BEGIN
  IF NOT (OLD.processed = 0 AND NEW.processed = 1 AND NEW.id <=> OLD.id
          AND NEW.record_type <=> OLD.record_type AND NEW.record_id <=> OLD.record_id
          AND NEW.source <=> OLD.source AND NEW.timestamp <=> OLD.timestamp
          AND NEW.base_version <=> OLD.base_version AND NEW.changes <=> OLD.changes
          AND NEW.full_snapshot_ref <=> OLD.full_snapshot_ref) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Event records are immutable and cannot be updated.';
  END IF;
END)sql",
      R"sql(CREATE TRIGGER IF NOT EXISTS events_refuse_delete BEFORE DELETE ON events FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Event records are immutable and cannot be deleted.')sql",
      R"sql(CREATE TRIGGER IF NOT EXISTS audit_refuse_update BEFORE UPDATE ON event_audit_log
FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Audit log records are immutable and cannot be updated.')sql",
      R"sql(CREATE TRIGGER IF NOT EXISTS audit_refuse_delete BEFORE DELETE ON event_audit_log
FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Audit log records are immutable and cannot be deleted.')sql",
  };
  return all;
}

// The relay's outbox (doc/pipeline.md). The events waiting for a merge when it arrives enter
// it, so that the relay publishes them once.
const std::vector<std::string>& v2() {
  static const std::vector<std::string> all = {
      R"sql(CREATE TABLE IF NOT EXISTS event_outbox (
  event_id   CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  created_at TIMESTAMP(6) NOT NULL
) ENGINE=InnoDB)sql",
      R"sql(INSERT IGNORE INTO event_outbox (event_id, created_at)
  SELECT id, '1971-01-01 00:00:00' FROM events WHERE processed = 0)sql",
  };
  return all;
}

// Bucket leases and membership (doc/scale_out.md): who serves which part of the environment.
const std::vector<std::string>& v3() {
  static const std::vector<std::string> all = {
      R"sql(CREATE TABLE IF NOT EXISTS bucket_leases (
  bucket INT UNSIGNED NOT NULL PRIMARY KEY,
  owner  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  epoch  BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB)sql",
      R"sql(CREATE TABLE IF NOT EXISTS cluster_members (
  member  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  address VARCHAR(255) NOT NULL,
  beat    BIGINT UNSIGNED NOT NULL,
  leaving TINYINT(1) NOT NULL DEFAULT 0,
  beat_at TIMESTAMP(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin)sql",
  };
  return all;
}

// Each member's key, for the requests members forward to each other, and when each lease last
// changed hands (doc/scale_out.md).
const std::vector<std::string>& v4() {
  static const std::vector<std::string> all = {
      "ALTER TABLE cluster_members ADD COLUMN IF NOT EXISTS key_sha256 VARCHAR(64) CHARACTER SET"
      " ascii COLLATE ascii_bin NOT NULL DEFAULT ''",
      "ALTER TABLE bucket_leases ADD COLUMN IF NOT EXISTS changed_at TIMESTAMP(6) NULL",
  };
  return all;
}

// The head of each writer slot's audit chain (doc/audit_chain.md), kAuditSlots of them (the
// Sequence engine's seq_0_to_63). An existing log becomes slot 0's chain up to its newest entry
// (legacy_until, on every row, so that no slot's entries go below it).
const std::vector<std::string>& v5() {
  static const std::vector<std::string> all = {
      R"sql(CREATE TABLE IF NOT EXISTS audit_heads (
  slot          INT UNSIGNED NOT NULL PRIMARY KEY,
  id            CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL,
  chain_hash    CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at_us BIGINT NULL,
  legacy_until  CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL
) ENGINE=InnoDB)sql",
      "INSERT IGNORE INTO audit_heads (slot, chain_hash) SELECT seq, REPEAT('0', 64) FROM"
      " seq_0_to_63",
      "UPDATE audit_heads, (SELECT id FROM event_audit_log ORDER BY id DESC LIMIT 1) AS last"
      " SET audit_heads.legacy_until = last.id"
      " WHERE audit_heads.id IS NULL AND audit_heads.legacy_until IS NULL",
      "UPDATE audit_heads, (SELECT id, chain_hash, created_at FROM event_audit_log ORDER BY id"
      " DESC LIMIT 1) AS last SET audit_heads.id = last.id, audit_heads.chain_hash ="
      " last.chain_hash, audit_heads.created_at_us = CAST(UNIX_TIMESTAMP(last.created_at) *"
      " 1000000 AS SIGNED) WHERE audit_heads.slot = 0 AND audit_heads.id IS NULL",
  };
  return all;
}

// The environment's bearer tokens, as their hashes (doc/tokens.md).
const std::vector<std::string>& v6() {
  static const std::vector<std::string> all = {
      R"sql(CREATE TABLE IF NOT EXISTS api_tokens (
  sha256          CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  name            VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  roles           VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at_us   BIGINT NOT NULL,
  expires_at_us   BIGINT NULL,
  last_used_at_us BIGINT NULL,
  revoked_at_us   BIGINT NULL,
  CONSTRAINT api_tokens_form CHECK (CHAR_LENGTH(sha256) = 64 AND CHAR_LENGTH(name) >= 1
                                    AND CHAR_LENGTH(roles) >= 1)
) ENGINE=InnoDB)sql",
  };
  return all;
}

// The administrators' acts (doc/tokens.md, "The admin audit"), append-only.
const std::vector<std::string>& v7() {
  static const std::vector<std::string> all = {
      R"sql(CREATE TABLE IF NOT EXISTS admin_audit (
  id      CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  at_us   BIGINT NOT NULL,
  actor   VARCHAR(200) NOT NULL,
  action  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  target  VARCHAR(200) NOT NULL,
  detail  JSON NULL,
  CONSTRAINT admin_audit_form CHECK (CHAR_LENGTH(actor) >= 1 AND CHAR_LENGTH(action) >= 1)
) ENGINE=InnoDB)sql",
      R"sql(CREATE TRIGGER IF NOT EXISTS admin_audit_refuse_update BEFORE UPDATE ON admin_audit
FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Admin audit records are immutable and cannot be updated.')sql",
      R"sql(CREATE TRIGGER IF NOT EXISTS admin_audit_refuse_delete BEFORE DELETE ON admin_audit
FOR EACH ROW
  SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Admin audit records are immutable and cannot be deleted.')sql",
  };
  return all;
}

// The IAM policies of topics and subscriptions (doc/tokens.md, "IAM policies").
const std::vector<std::string>& v8() {
  static const std::vector<std::string> all = {
      R"sql(CREATE TABLE IF NOT EXISTS iam_policies (
  resource      VARCHAR(300) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  bindings      JSON NOT NULL,
  version       BIGINT NOT NULL,
  updated_at_us BIGINT NOT NULL,
  CONSTRAINT iam_policies_form CHECK (CHAR_LENGTH(resource) >= 1 AND version >= 1)
) ENGINE=InnoDB)sql",
  };
  return all;
}

std::string ident(const std::string& name) { return "`" + name + "`"; }
// A role's login is two accounts with the same password and privileges: at '%' (any host), and
// at 'localhost'. A stock mariadb-install-db makes anonymous accounts (''@'localhost'), and
// MariaDB matches the most specific host first: for a connection from this machine (a socket,
// or TCP from 127.0.0.1 with name resolution on) ''@'localhost' ranks above 'login'@'%', and the
// role's login is refused ([1045] Access denied). 'login'@'localhost' ranks above both.
const char* const kAccountHosts[] = {"%", "localhost"};
std::string account(const std::string& login, const char* host) {
  return "'" + login + "'@'" + host + "'";
}
// Each statement once per account of `login`: `make` gets the account.
std::vector<std::string> per_account(
    const std::string& login,
    const std::function<std::vector<std::string>(const std::string& account)>& make) {
  std::vector<std::string> out;
  for (const char* host : kAccountHosts) {
    for (std::string& st : make(account(login, host))) out.push_back(std::move(st));
  }
  return out;
}

class MysqlDialect final : public SqlDialect {
 public:
  Result<std::unique_ptr<SqlConnection>> connect(const SqlLogin& login) const override {
    return mysql::connect(login);
  }
  std::string maintenance_database() const override { return ""; }

  const std::vector<SqlMigration>& migrations() const override {
    static const std::vector<SqlMigration> all = {
        {1, "events, event_audit_log, records, immutability triggers", v1()},
        {2, "event_outbox", v2()},
        {3, "bucket_leases, cluster_members", v3()},
        {4, "cluster_members.key_sha256, bucket_leases.changed_at", v4()},
        {5, "audit_heads", v5()},
        {6, "api_tokens", v6()},
        {7, "admin_audit", v7()},
        {8, "iam_policies", v8()},
    };
    return all;
  }
  std::string create_migrations_table() const override {
    return "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY,"
           " name VARCHAR(200) NOT NULL, applied_at TIMESTAMP(6) NOT NULL) ENGINE=InnoDB";
  }
  std::string events_comment_query() const override {
    return "SELECT TABLE_COMMENT FROM information_schema.TABLES"
           " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events'";
  }
  std::string set_events_comment(const std::string& comment) const override {
    return "ALTER TABLE events COMMENT = " + literal(comment);
  }

  // Named locks are held by the session, not the transaction: taken when the transaction
  // begins and let go after it ends, each in the same round trip. Their names carry the
  // database's, so stores on one server do not share them; MariaDB finds a deadlock among them
  // should one form. (Under READ COMMITTED, the reads that follow see everything committed
  // before the locks were granted.)
  std::vector<SqlStatement> begin_statements(bool writer,
                                             std::span<const std::string> keys) const override {
    std::vector<SqlStatement> out = {{"START TRANSACTION", {}}};
    if (writer) {
      out.push_back({"SELECT GET_LOCK(CONCAT(DATABASE(), '.backbone_writer'), 60)", {}});
    }
    for (size_t at = 0; at < keys.size(); at += 256) {
      SqlStatement st{"SELECT ", {}};
      for (size_t i = at; i < std::min(keys.size(), at + 256); ++i) {
        if (i > at) st.sql += ", ";
        st.sql += "GET_LOCK(CONCAT(LEFT(DATABASE(), 40), '.k', ?), 60)";
        st.params.push_back(keys[i]);
      }
      out.push_back(std::move(st));
    }
    return out;
  }
  Result<void> check_begun(std::span<const SqlRows> results) const override {
    for (size_t i = 1; i < results.size(); ++i) {
      const bool granted =
          !results[i].rows.empty() &&
          std::all_of(results[i].rows[0].begin(), results[i].rows[0].end(),
                      [](const std::optional<std::string>& v) { return v == "1"; });
      if (!granted) {
        return make_error(Errc::kUnavailable,
                          "mariadb: the store's write locks were not granted within 60 s");
      }
    }
    return {};
  }
  std::vector<SqlStatement> end_statements(bool commit) const override {
    return {{commit ? "COMMIT" : "ROLLBACK", {}}, {"DO RELEASE_ALL_LOCKS()", {}}};
  }

  // The index is named, so that statistics that lag behind a young table cannot make the
  // optimizer scan it; and the range optimizer estimates an IN list from the index's statistics
  // instead of diving into the index once per value before looking each one up (measured:
  // BENCHMARKS.md). Per statement only: session-wide, the dive limit let lagging statistics
  // turn other queries into scans.
  std::string force_index(const std::string& index) const override {
    return " FORCE INDEX (" + ident(index) + ")";
  }
  std::string key_lookup_prefix() const override {
    return "SET STATEMENT eq_range_index_dive_limit = 1 FOR ";
  }

  std::string text(const std::string& expr) const override { return "CAST(" + expr + " AS CHAR)"; }

  std::string epoch_micros(const std::string& column) const override {
    return "CAST(UNIX_TIMESTAMP(" + column + ") * 1000000 AS SIGNED)";
  }
  std::string upsert_records_suffix() const override {
    return " ON DUPLICATE KEY UPDATE version = VALUES(version), state = VALUES(state),"
           " field_versions = VALUES(field_versions), updated_at = VALUES(updated_at)";
  }

  Result<void> create_database(SqlConnection& c, const std::string& database) const override {
    return c.exec("CREATE DATABASE IF NOT EXISTS " + ident(database) +
                  " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
  }

  Result<void> drop_database(SqlConnection& c, const std::string& database) const override {
    return c.exec("DROP DATABASE IF EXISTS " + ident(database));
  }

  std::vector<std::string> ensure_login(Role role, const std::string& login,
                                        const std::string& password,
                                        const std::string& database) const override {
    return per_account(login, [&](const std::string& account) {
      std::vector<std::string> out = {
          "CREATE USER IF NOT EXISTS " + account,
          "ALTER USER " + account + " IDENTIFIED BY " + literal(password),
      };
      // The migrator owns the schema: DDL, and granting the other roles their table privileges.
      if (role == Role::kMigrator) {
        out.push_back("GRANT ALL PRIVILEGES ON " + ident(database) + ".* TO " + account +
                      " WITH GRANT OPTION");
      }
      return out;
    });
  }
  Result<std::vector<std::string>> anonymous_account_hosts(SqlConnection& admin) const override {
    auto rows = admin.run("SELECT host FROM mysql.user WHERE user = '' ORDER BY host");
    if (!rows.ok()) return rows.error();
    std::vector<std::string> hosts;
    for (const auto& row : rows->rows) hosts.push_back(row[0].value_or(""));
    return hosts;
  }
  std::vector<std::string> role_account_hosts() const override {
    return {std::begin(kAccountHosts), std::end(kAccountHosts)};
  }
  std::vector<std::string> revoke_table_privileges(const std::string& login,
                                                   const std::string& database) const override {
    return per_account(login, [&](const std::string& account) {
      std::vector<std::string> out;
      for (const char* table :
           {"events", "event_audit_log", "records", "event_outbox", "bucket_leases",
            "cluster_members", "audit_heads", "api_tokens", "admin_audit", "iam_policies"}) {
        out.push_back("REVOKE ALL PRIVILEGES ON " + ident(database) + "." + table + " FROM " +
                      account);
      }
      return out;
    });
  }
  std::vector<std::string> grant_table_privileges(Role role, const std::string& login,
                                                  const std::string& database) const override {
    return per_account(login, [&](const std::string& account) {
      return grants_to(role, ident(database) + ".", " TO " + account);
    });
  }
  static std::vector<std::string> grants_to(Role role, const std::string& db,
                                            const std::string& to) {
    switch (role) {
      case Role::kMigrator:
        return {};  // ALL on the database, from ensure_login
      case Role::kSyncWorker:
        return {"GRANT SELECT, INSERT ON " + db + "events" + to,
                "GRANT SELECT, INSERT ON " + db + "event_audit_log" + to,
                "GRANT SELECT, INSERT, DELETE ON " + db + "event_outbox" + to,
                "GRANT SELECT, UPDATE ON " + db + "audit_heads" + to,
                "GRANT SELECT, UPDATE (last_used_at_us) ON " + db + "api_tokens" + to,
                "GRANT SELECT ON " + db + "iam_policies" + to};
      case Role::kMergeWorker:
        return {"GRANT SELECT, INSERT, UPDATE (processed) ON " + db + "events" + to,
                "GRANT SELECT, INSERT ON " + db + "event_audit_log" + to,
                "GRANT SELECT, INSERT, UPDATE ON " + db + "records" + to,
                "GRANT SELECT, INSERT, UPDATE ON " + db + "bucket_leases" + to,
                "GRANT SELECT, INSERT, UPDATE, DELETE ON " + db + "cluster_members" + to,
                "GRANT SELECT, UPDATE ON " + db + "audit_heads" + to,
                "GRANT SELECT ON " + db + "api_tokens" + to,
                "GRANT SELECT ON " + db + "iam_policies" + to};
      case Role::kReader:
        return {"GRANT SELECT ON " + db + "events" + to,
                "GRANT SELECT ON " + db + "event_audit_log" + to,
                "GRANT SELECT ON " + db + "records" + to,
                "GRANT SELECT ON " + db + "event_outbox" + to,
                "GRANT SELECT ON " + db + "bucket_leases" + to,
                "GRANT SELECT ON " + db + "cluster_members" + to,
                "GRANT SELECT ON " + db + "audit_heads" + to,
                "GRANT SELECT ON " + db + "api_tokens" + to,
                "GRANT SELECT ON " + db + "admin_audit" + to,
                "GRANT SELECT ON " + db + "iam_policies" + to};
    }
    return {};
  }
  bool is_unknown_login(const Error& e) const override {
    return e.message.find("[1133]") != std::string::npos ||
           e.message.find("[1147]") != std::string::npos;
  }
  std::string literal(const std::string& s) const override {
    std::string out = "'";
    for (char c : s) {
      if (c == '\'' || c == '\\') out += c;  // '' and \\ (backslash escapes are on)
      out += c;
    }
    return out + "'";
  }
};

}  // namespace

const SqlDialect& mysql_dialect() {
  static const MysqlDialect d;
  return d;
}

}  // namespace backbone::sql
