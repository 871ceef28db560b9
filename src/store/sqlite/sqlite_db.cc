#include "store/sqlite/sqlite_db.h"

#include "store/store_core.h"

#include <cerrno>
#include <filesystem>
#include <map>
#include <system_error>

#include "store/sqlite/sqlite_authorizer.h"

namespace backbone::sqlite {
namespace {

// The writer lock of a database file, shared by the connections of this process.
std::shared_ptr<std::mutex> writer_lock_for(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<std::mutex>> locks;  // GUARDED_BY(mu)
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  std::lock_guard lk(mu);
  std::shared_ptr<std::mutex> lock = locks[key].lock();
  if (!lock) {
    lock = std::make_shared<std::mutex>();
    locks[key] = lock;
  }
  return lock;
}

// Process-wide settings, made once before SQLite initializes. Memory statistics off: with them
// on, every allocation SQLite makes takes one global mutex, and all connections of the process
// contend for it (6-7% of the pipeline bench's CPU, BENCHMARKS.md). Nothing here reads them.
void configure_sqlite_once() {
  static const bool done = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);  // SQLITE_MISUSE if already initialized: kept
    return true;
  }();
  (void)done;
}

}  // namespace

Stmt::~Stmt() { sqlite3_finalize(s_); }

Stmt& Stmt::bind(int i, std::string_view text) {
  sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

Result<bool> Stmt::step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = db_.error(rc, "step");
  reset();
  return e;
}

Result<void> Stmt::run() {
  for (;;) {
    auto r = step();
    if (!r.ok()) return r.error();
    if (!*r) break;
  }
  reset();
  return {};
}

void Stmt::reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

std::string Stmt::text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
}
std::optional<std::string> Stmt::optional_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}
int64_t Stmt::integer(int col) const { return sqlite3_column_int64(s_, col); }
bool Stmt::is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

Result<std::unique_ptr<SqliteDb>> SqliteDb::open(const std::string& path, Role role,
                                                 Durability durability) {
  configure_sqlite_once();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (role == Role::kMigrator) {
    flags |= SQLITE_OPEN_CREATE;
    const auto dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) {
      return make_error(Errc::kUnavailable,
                        "cannot create folder " + dir.string() + ": " + ec.message());
    }
  } else if (!std::filesystem::exists(path)) {
    return make_error(Errc::kNotFound,
                      "store " + path + " does not exist (run `backbone migrate` first)");
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw, path, role));
  db->writer_lock_ = writer_lock_for(path);
  if (rc != SQLITE_OK) return db->error(rc, "open " + path);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 10'000);
  const char* sync = durability == Durability::kFsync ? "FULL" : "NORMAL";
  // A 16 MiB page cache per connection (the default is 2 MiB); a checkpoint every 10,000 WAL
  // pages (40 MiB) instead of 1,000, so that pages many commits touch are copied back once; and
  // statement journals (a merge's savepoint keeps the pages it changes) in memory, not in
  // temporary files: that alone cut the bytes written per merged event from 59 KB to 17 KB.
  BACKBONE_TRY(db->exec(std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") + sync +
                        "; PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;"
                        " PRAGMA wal_autocheckpoint=10000; PRAGMA temp_store=MEMORY;"));
  {
    auto v = db->prepare("PRAGMA user_version");
    if (!v.ok()) return v.error();
    auto row = (*v)->step();
    if (!row.ok()) return row.error();
    db->user_version_ = static_cast<int>((*v)->integer(0));
    (*v)->reset();
  }
  db->cache_.clear();  // statements prepared before the authorizer are not kept
  if (role != Role::kMigrator) install_authorizer(db.get());
  return db;
}

SqliteDb::~SqliteDb() {
  cache_.clear();
  sqlite3_close_v2(db_);
}

Result<void> SqliteDb::exec(std::string_view sql) {
  last_denial.clear();
  const std::string s(sql);
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error(rc, "exec");
  return {};
}

Result<Stmt*> SqliteDb::prepare(const std::string& sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) return it->second.get();
  last_denial.clear();
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return error(rc, "prepare");
  }
  auto stmt = std::make_unique<Stmt>(*this, s);
  Stmt* out = stmt.get();
  cache_.emplace(sql, std::move(stmt));
  return out;
}

Error SqliteDb::error(int rc, std::string_view doing) const {
  const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const int primary = rc & 0xFF;
  // The immutability triggers' messages (store_core.h), exactly.
  for (std::string_view exact : kImmutableMessages) {
    if (msg == exact) return make_error(Errc::kImmutable, msg);
  }
  switch (primary) {
    case SQLITE_AUTH:
      return make_error(Errc::kPermissionDenied,
                        std::string("access denied for role ") + role_name(role_) + ": " +
                            (last_denial.empty() ? msg : last_denial + " is not granted"));
    case SQLITE_CONSTRAINT:
      return make_error(Errc::kInvalidArgument, "constraint failed: " + msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY: {
      // A statement or transaction that failed this way wrote nothing; it succeeds again once
      // the cause is gone (space freed, the lock released), on the same connection.
      const int os_error = db_ ? sqlite3_system_errno(db_) : 0;
      const bool full = primary == SQLITE_FULL || os_error == ENOSPC || os_error == EDQUOT;
      return make_error(Errc::kUnavailable, std::string(full ? "the disk is full: " : "") +
                                                "sqlite " + path_ + ": " + std::string(doing) +
                                                ": " + msg);
    }
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return make_error(Errc::kDataLoss, "sqlite " + path_ + " is damaged: " + msg);
    default:
      return make_error(Errc::kInternal, "sqlite " + std::string(doing) + ": " + msg);
  }
}

}  // namespace backbone::sqlite
