// SqliteDb: one SQLite connection acting as one Role, with the project's PRAGMAs, prepared
// statements and the mapping of SQLite errors to Errc. Internal to the SQLite backend (and its
// tests, which use it to run raw SQL as a role).
//
// Thread-safety: not thread-safe; the owner serializes calls.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "backbone/event_store.h"
#include "backbone/result.h"
#include "backbone/role.h"

namespace backbone::sqlite {

class SqliteDb;

// A prepared statement, reset when it goes out of use. Owned by its SqliteDb's cache.
class Stmt {
 public:
  Stmt(SqliteDb& db, sqlite3_stmt* s) : db_(db), s_(s) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::string_view text);
  Stmt& bind(int i, int64_t v);
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
  Stmt& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
  Stmt& bind_optional(int i, const std::optional<std::string>& text) {
    return text ? bind(i, std::string_view(*text)) : bind_null(i);
  }

  // Steps once: true with a row, false when done.
  Result<bool> step();
  // Steps until done (for statements that return no rows).
  Result<void> run();
  void reset();

  std::string text(int col) const;
  std::optional<std::string> optional_text(int col) const;
  int64_t integer(int col) const;
  bool is_null(int col) const;

 private:
  SqliteDb& db_;
  sqlite3_stmt* s_;
};

class SqliteDb {
 public:
  // Opens `path` as `role`. A migrator creates the file (and its folder) if absent; other roles
  // need it to exist (kNotFound). Sets WAL, synchronous (FULL for kFsync, NORMAL for kRelaxed),
  // a busy timeout, and for roles other than migrator installs the authorizer.
  static Result<std::unique_ptr<SqliteDb>> open(const std::string& path, Role role,
                                                Durability durability);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements with no parameters.
  Result<void> exec(std::string_view sql);
  // A cached prepared statement. REQUIRES: no other use of the same SQL is in flight.
  Result<Stmt*> prepare(const std::string& sql);

  // PRAGMA user_version, read without the authorizer at open and kept current by migrate.
  int user_version() const { return user_version_; }
  void set_user_version_cache(int v) { user_version_ = v; }

  Role role() const { return role_; }
  // Shared by every connection of this process to the same file. Writers hold it around a
  // write transaction, so that they queue on it instead of in SQLite's busy handler, which
  // sleeps 1 to 100 ms between tries. (Other processes still meet the busy timeout.)
  std::mutex& writer_lock() { return *writer_lock_; }
  sqlite3* handle() { return db_; }
  const std::string& path() const { return path_; }

  // The Errc and message for a failed call that returned `rc`.
  Error error(int rc, std::string_view doing) const;

  // Filled by the authorizer with what it last refused ("UPDATE on events").
  std::string last_denial;

 private:
  SqliteDb(sqlite3* db, std::string path, Role role)
      : db_(db), path_(std::move(path)), role_(role) {}
  sqlite3* db_;
  std::string path_;
  Role role_;
  int user_version_ = 0;
  std::shared_ptr<std::mutex> writer_lock_;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> cache_;
  friend class Stmt;
};

}  // namespace backbone::sqlite
