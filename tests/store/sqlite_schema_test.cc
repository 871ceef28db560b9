// The seed's schema criteria, checked by reading the schema back from a migrated database.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "backbone/event_store.h"
#include "store/sqlite/sqlite_db.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

struct Column {
  std::string type;
  bool not_null;
  int pk;
  std::optional<std::string> default_value;
};

class SqliteSchema : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.url = harness_.url();
    o.role = Role::kMigrator;
    auto s = EventStore::open(o);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->migrate().ok());
    auto db = sqlite::SqliteDb::open(harness_.db_path(), Role::kMigrator, Durability::kFsync);
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
  }
  std::map<std::string, Column> columns(const std::string& table) {
    std::map<std::string, Column> out;
    auto s = db_->prepare(
        "SELECT name, type, \"notnull\", pk, dflt_value FROM pragma_table_info('" + table + "')");
    EXPECT_TRUE(s.ok());
    while (*(*s)->step()) {
      out[(*s)->text(0)] = Column{(*s)->text(1), (*s)->integer(2) != 0,
                                  static_cast<int>((*s)->integer(3)), (*s)->optional_text(4)};
    }
    (*s)->reset();
    return out;
  }
  // Named indexes (not the primary key's automatic one) and their columns, in order.
  std::map<std::string, std::vector<std::string>> indexes(const std::string& table) {
    std::map<std::string, std::vector<std::string>> out;
    auto list =
        db_->prepare("SELECT name, origin, \"unique\" FROM pragma_index_list('" + table + "')");
    std::vector<std::pair<std::string, std::string>> names;
    while (*(*list)->step()) {
      names.emplace_back((*list)->text(0), (*list)->text(1));
      EXPECT_TRUE((*list)->text(1) == "pk" || (*list)->integer(2) == 0)
          << "a unique index other than the primary key: " << (*list)->text(0);
    }
    (*list)->reset();
    for (const auto& [name, origin] : names) {
      if (origin == "pk") continue;
      auto cols = db_->prepare("SELECT name FROM pragma_index_info('" + name + "') ORDER BY seqno");
      while (*(*cols)->step()) out[name].push_back((*cols)->text(0));
      (*cols)->reset();
    }
    return out;
  }
  SqliteHarness harness_;
  std::unique_ptr<sqlite::SqliteDb> db_;
};

TEST_F(SqliteSchema, EventsHasExactlyTheSpecColumnsAndTheUuidIsTheOnlyKey) {
  auto cols = columns("events");
  const std::map<std::string, std::string> want = {{"id", "CHAR(36)"},
                                                   {"record_type", "VARCHAR(64)"},
                                                   {"record_id", "VARCHAR(191)"},
                                                   {"source", "VARCHAR(64)"},
                                                   {"timestamp", "INTEGER"},
                                                   {"base_version", "INTEGER"},
                                                   {"changes", "JSON"},
                                                   {"full_snapshot_ref", "VARCHAR(512)"},
                                                   {"processed", "TINYINT(1)"}};
  ASSERT_EQ(cols.size(), want.size());
  for (const auto& [name, type] : want) {
    ASSERT_TRUE(cols.count(name)) << name;
    EXPECT_EQ(cols[name].type, type) << name;
    EXPECT_EQ(cols[name].not_null, name != "full_snapshot_ref") << name;
    EXPECT_EQ(cols[name].pk, name == "id" ? 1 : 0) << name;
  }
  EXPECT_EQ(cols["processed"].default_value, "0");
  EXPECT_FALSE(cols.count("event_id"));
  // No AUTOINCREMENT anywhere.
  auto seq = db_->prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'");
  ASSERT_TRUE(*(*seq)->step());
  EXPECT_EQ((*seq)->integer(0), 0);
  (*seq)->reset();
}

TEST_F(SqliteSchema, EventsHasExactlyTheThreeNamedIndexes) {
  const std::map<std::string, std::vector<std::string>> want = {
      {"idx_events_record", {"record_type", "record_id", "timestamp"}},
      {"idx_events_processed", {"processed", "timestamp"}},
      {"idx_events_timestamp", {"timestamp"}}};
  EXPECT_EQ(indexes("events"), want);
}

TEST_F(SqliteSchema, AuditLogHasItsColumnsAndIndexes) {
  auto cols = columns("event_audit_log");
  const std::map<std::string, std::string> want = {{"id", "CHAR(36)"},
                                                   {"event_id", "CHAR(36)"},
                                                   {"record_type", "VARCHAR(64)"},
                                                   {"record_id", "VARCHAR(191)"},
                                                   {"action", "VARCHAR(32)"},
                                                   {"fingerprint", "CHAR(64)"},
                                                   {"chain_hash", "CHAR(64)"},
                                                   {"detail", "JSON"},
                                                   {"created_at", "INTEGER"}};
  ASSERT_EQ(cols.size(), want.size());
  for (const auto& [name, type] : want) {
    EXPECT_EQ(cols[name].type, type) << name;
    EXPECT_EQ(cols[name].not_null, name != "detail") << name;
    EXPECT_EQ(cols[name].pk, name == "id" ? 1 : 0) << name;
  }
  const std::map<std::string, std::vector<std::string>> want_idx = {
      {"idx_audit_fingerprint", {"fingerprint"}},
      {"idx_audit_record", {"record_type", "record_id"}},
      {"idx_audit_event", {"event_id"}}};
  EXPECT_EQ(indexes("event_audit_log"), want_idx);
}

TEST_F(SqliteSchema, RecordsIsKeyedByTypeAndId) {
  auto cols = columns("records");
  std::set<std::string> names;
  for (const auto& [n, c] : cols) names.insert(n);
  EXPECT_EQ(names, (std::set<std::string>{"record_type", "record_id", "version", "state",
                                          "field_versions", "updated_at"}));
  EXPECT_EQ(cols["record_type"].pk, 1);
  EXPECT_EQ(cols["record_id"].pk, 2);
}

TEST_F(SqliteSchema, MigrationsAreRecordedAndWalWithFullSyncIsOn) {
  auto s = db_->prepare("SELECT version, name FROM schema_migrations ORDER BY version");
  ASSERT_TRUE(*(*s)->step());
  EXPECT_EQ((*s)->integer(0), 1);
  (*s)->reset();
  auto mode = db_->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(*(*mode)->step());
  EXPECT_EQ((*mode)->text(0), "wal");
  (*mode)->reset();
  auto sync = db_->prepare("PRAGMA synchronous");
  ASSERT_TRUE(*(*sync)->step());
  EXPECT_EQ((*sync)->integer(0), 2);  // FULL
  (*sync)->reset();
}

TEST_F(SqliteSchema, CheckConstraintsHoldRowsWrittenAroundTheLibrary) {
  // Even SQL typed by hand cannot store an invalid event.
  const std::string ok_row =
      "'01a2205c-d11c-7327-b6d6-f43dd781f1e7', 'contact', '1', 'crm', 1, 0, '{}', NULL, 0";
  EXPECT_TRUE(db_->exec("INSERT INTO events VALUES (" + ok_row + ")").ok());
  for (const std::string& row :
       {std::string("'01a2205c-d11c-7327-b6d6-f43dd781f1e8', 'contact', '1', 'crm', 1, 0, "
                    "'[1]', NULL, 0"),
        std::string("'01a2205c-d11c-7327-b6d6-f43dd781f1e9', 'contact', '1', 'crm', 1, 0, "
                    "'{bad', NULL, 0"),
        std::string("'01a2205c-d11c-7327-b6d6-f43dd781f1ea', 'contact', '1', 'crm', 1, -1, "
                    "'{}', NULL, 0"),
        std::string("'01a2205c-d11c-7327-b6d6-f43dd781f1eb', 'contact', '1', 'crm', 1, 0, "
                    "'{}', NULL, 2")}) {
    auto r = db_->exec("INSERT INTO events VALUES (" + row + ")");
    EXPECT_FALSE(r.ok()) << row;
  }
  auto dup = db_->exec("INSERT OR REPLACE INTO events VALUES (" + ok_row + ")");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message, "Event records are immutable and cannot be updated.");
}

}  // namespace
}  // namespace backbone::testing
