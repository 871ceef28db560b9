// SqlConnection: one connection to a database server (PostgreSQL or MySQL/MariaDB), as the small
// interface that the server backends' shared store code (sql_event_store.cc) runs on. Each
// driver prepares a statement once per connection and reuses it; parameters and results travel
// as text, which both servers convert to and from the column types.
//
// Errors are mapped by the driver: the server's access-denied (SQLSTATE 42501, MariaDB 1142 and
// kin) is kPermissionDenied; a trigger's immutability refusal is kImmutable with the exact SPEC
// §2 message; a lost connection, a deadlock or a lock timeout is kUnavailable (retriable); a
// unique violation is kConflict. Messages carry the server's own code, e.g. "[42501] ...".
//
// Thread-safety: not thread-safe; one thread at a time (ConnectionPool hands them out).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backbone/result.h"

namespace backbone::sql {

using SqlParam = std::optional<std::string>;  // a value as text, or NULL
using SqlRow = std::vector<std::optional<std::string>>;

struct SqlRows {
  std::vector<SqlRow> rows;
  uint64_t affected = 0;  // rows changed by an INSERT, UPDATE or DELETE
};

// Who connects, and where.
struct SqlLogin {
  std::string host;
  uint16_t port = 0;  // 0: the server's default
  std::string database;
  std::string user;
  std::string password;  // empty: none
  int connect_timeout_s = 10;
  // The server ends the session when it stays this long in a transaction without a statement
  // (MariaDB counts whole seconds, rounded up).
  int64_t stall_timeout_ms = 2'000;
};

// One statement of a batch: SQL with `?` placeholders, and its parameters.
struct SqlStatement {
  std::string sql;
  std::vector<SqlParam> params;
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  // Runs one statement with `params` bound, in order, to its `?` placeholders; the statement is
  // prepared on first use and kept. Returns the rows (for a query) and the affected count.
  virtual Result<SqlRows> run(const std::string& sql, std::span<const SqlParam> params) = 0;
  Result<SqlRows> run(const std::string& sql) { return run(sql, {}); }
  // Runs one or more statements (separated by ';') without parameters and without preparing
  // them (DDL, transaction control) in one round trip; returns the last statement's rows.
  virtual Result<SqlRows> script(const std::string& sql) = 0;
  Result<void> exec(const std::string& sql) {
    auto r = script(sql);
    if (!r.ok()) return r.error();
    return {};
  }
  // Runs `statements` in order and returns each one's rows; stops at the first that fails and
  // returns its error. PostgreSQL sends them all in one round trip (pipeline mode over the
  // prepared statements); MySQL/MariaDB sends runs of statements with small parameters as one
  // multi-statement query (parameters as escaped literals), and runs each statement with large
  // parameters prepared, on its own.
  //
  // `meanwhile`, if set, runs once on the calling thread while the server works: after the
  // first round trip's statements are sent and before their results are read (PostgreSQL: the
  // whole pipeline; MySQL/MariaDB: the first multi-statement query, or before a prepared
  // statement that comes first). It is not run when sending fails.
  virtual Result<std::vector<SqlRows>> run_batch(std::span<const SqlStatement> statements,
                                                 const std::function<void()>& meanwhile) = 0;
  Result<std::vector<SqlRows>> run_batch(std::span<const SqlStatement> statements) {
    return run_batch(statements, {});
  }
  // False once the connection is lost; a pool drops such a connection instead of reusing it.
  virtual bool healthy() const = 0;
};

}  // namespace backbone::sql
