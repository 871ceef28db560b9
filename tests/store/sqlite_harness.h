// The SQLite StoreHarness: a fresh temporary folder per test, raw SQL through SqliteDb as a
// role (so the authorizer applies, as it does to the store).
#pragma once

#include <memory>
#include <string>

#include "store/event_store_conformance.h"

namespace backbone::testing {

// A temporary folder, removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class SqliteHarness final : public StoreHarness {
 public:
  SqliteHarness() : db_path_(dir_.file("events.db")) {}
  // On an existing database file.
  explicit SqliteHarness(std::string path) : db_path_(std::move(path)) {}
  std::string url() override { return "sqlite://" + db_path_; }
  Result<void> raw_sql(Role role, const std::string& sql) override;
  Result<int64_t> raw_query_int(Role role, const std::string& sql) override;
  const std::string& db_path() const { return db_path_; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::string db_path_;
};

std::unique_ptr<StoreHarness> make_sqlite_harness();

// The SQLite store of `path` as `role`, on `clock`; nullptr (and a test failure) if it will not
// open.
std::unique_ptr<EventStore> open_sqlite_store(const std::string& path, Role role,
                                              const Clock* clock);

}  // namespace backbone::testing
