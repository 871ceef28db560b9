#include "store/sqlite_harness.h"

#include <cstdlib>
#include <filesystem>

#include "store/sqlite/sqlite_db.h"

namespace backbone::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "backbone-test-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  BACKBONE_ASSERT(made != nullptr);
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Result<void> SqliteHarness::raw_sql(Role role, const std::string& sql) {
  auto db = sqlite::SqliteDb::open(db_path_, role, Durability::kFsync);
  if (!db.ok()) return db.error();
  return (*db)->exec(sql);
}

Result<int64_t> SqliteHarness::raw_query_int(Role role, const std::string& sql) {
  auto db = sqlite::SqliteDb::open(db_path_, role, Durability::kFsync);
  if (!db.ok()) return db.error();
  auto s = (*db)->prepare(sql);
  if (!s.ok()) return s.error();
  auto row = (*s)->step();
  if (!row.ok()) return row.error();
  if (!*row) return make_error(Errc::kNotFound, "no row");
  const int64_t v = (*s)->integer(0);
  (*s)->reset();
  return v;
}

std::unique_ptr<StoreHarness> make_sqlite_harness() { return std::make_unique<SqliteHarness>(); }

std::unique_ptr<EventStore> open_sqlite_store(const std::string& path, Role role,
                                              const Clock* clock) {
  StoreOptions o;
  o.url = "sqlite://" + path;
  o.role = role;
  o.clock = clock;
  auto s = EventStore::open(o);
  EXPECT_TRUE(s.ok()) << s.error().describe();
  return s.ok() ? std::move(*s) : nullptr;
}

}  // namespace backbone::testing
