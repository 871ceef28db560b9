// SqlDialect: what differs between the server backends (PostgreSQL, MySQL/MariaDB) underneath
// the one store implementation in sql_event_store.cc: how to connect, the schema and its
// migrations, the transaction's locks, a few SQL spellings, and the role grants of SPEC §2.
//
// Thread-safety: dialects are stateless singletons.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "backbone/role.h"
#include "store/sql/sql_connection.h"

namespace backbone::sql {

struct SqlMigration {
  int version;
  std::string name;
  std::vector<std::string> statements;  // each idempotent, so a half-applied one can run again
};

class SqlDialect {
 public:
  virtual ~SqlDialect() = default;
  virtual Result<std::unique_ptr<SqlConnection>> connect(const SqlLogin& login) const = 0;
  // The database to connect to for work on the server itself (creating a database).
  virtual std::string maintenance_database() const = 0;

  // Schema. The version lives in the comment of table `events` ("backbone schema N"), which every
  // role may read; the history lives in schema_migrations, which only the migrator may.
  virtual const std::vector<SqlMigration>& migrations() const = 0;
  virtual std::string create_migrations_table() const = 0;
  virtual std::string events_comment_query() const = 0;  // one row and column, or NULL
  virtual std::string set_events_comment(const std::string& comment) const = 0;

  // The start of a write transaction and its locks, taken in this order so that two writes
  // never wait for each other in a cycle: the store's writer lock when `writer` (migrations,
  // setting buckets up, merges that carry no fence), then one lock per key of `keys` (sorted,
  // each once: an append's fingerprints, so that two processes cannot both store one change).
  // Every process that shares the database sees them; they go with the connection if it is lost.
  // (Row locks on bucket_leases and audit_heads follow, in the same SQL on every server:
  // sql_lookups.h.) The statements are sent with other work in one round trip
  // (SqlConnection::run_batch).
  virtual std::vector<SqlStatement> begin_statements(bool writer,
                                                     std::span<const std::string> keys) const = 0;
  // Whether the locks were granted, from those statements' results (kUnavailable if not).
  virtual Result<void> check_begun(std::span<const SqlRows> results) const = 0;
  // COMMIT or ROLLBACK, and whatever lets the locks go.
  virtual std::vector<SqlStatement> end_statements(bool commit) const = 0;
  // The transaction with the writer lock alone, begun and ended on its own.
  Result<void> begin_locked(SqlConnection& c) const {
    auto r = c.run_batch(begin_statements(true, {}));
    if (!r.ok()) return r.error();
    return check_begun(*r);
  }
  Result<void> end_locked(SqlConnection& c, bool commit) const {
    auto r = c.run_batch(end_statements(commit));
    if (!r.ok()) return r.error();
    return {};
  }

  // `expr` (or NULL) as text, so that different columns can share a UNION ALL.
  virtual std::string text(const std::string& expr) const = 0;
  // What makes a statement of key lookups (IN lists of keys) plan as one: a hint after a table
  // name that names the index to use, and a prefix for the statement.
  virtual std::string force_index(const std::string& index) const = 0;
  virtual std::string key_lookup_prefix() const = 0;
  // An expression giving `column` (a timestamp) as integer microseconds since the epoch.
  virtual std::string epoch_micros(const std::string& column) const = 0;
  // The tail of a multi-row INSERT INTO records that updates a row that exists.
  virtual std::string upsert_records_suffix() const = 0;

  // Creates `database` if it does not exist (on a maintenance connection, as an administrator).
  virtual Result<void> create_database(SqlConnection& c, const std::string& database) const = 0;
  // Drops `database` and everything in it, if it exists, even while others are connected (for
  // tests and benchmarks; nothing in the product drops a store).
  virtual Result<void> drop_database(SqlConnection& c, const std::string& database) const = 0;

  // Roles (SPEC §2). `login` is the role's login name on the server.
  // Creates the login if missing and sets its password; run by an administrator.
  virtual std::vector<std::string> ensure_login(Role role, const std::string& login,
                                                const std::string& password,
                                                const std::string& database) const = 0;
  // Takes away every privilege the login has on the store's tables (before granting anew).
  virtual std::vector<std::string> revoke_table_privileges(const std::string& login,
                                                           const std::string& database) const = 0;
  // Grants exactly the role's privileges on the store's tables.
  virtual std::vector<std::string> grant_table_privileges(Role role, const std::string& login,
                                                          const std::string& database) const = 0;
  // The hosts of the server's anonymous accounts (MySQL/MariaDB: user ''), which can shadow a
  // role's login; none where the server has no such thing (PostgreSQL). Run as an
  // administrator.
  virtual Result<std::vector<std::string>> anonymous_account_hosts(SqlConnection&) const {
    return std::vector<std::string>{};
  }
  // The hosts at which each role's login exists (MySQL/MariaDB: '%' and 'localhost'); none
  // where logins have no host.
  virtual std::vector<std::string> role_account_hosts() const { return {}; }
  // True for the server's error "no such role/user, or no such grant" (granting to a login that
  // does not exist, or revoking what was never granted).
  virtual bool is_unknown_login(const Error& e) const = 0;
  // A string literal in this server's syntax ('it''s').
  virtual std::string literal(const std::string& s) const = 0;
};

}  // namespace backbone::sql
