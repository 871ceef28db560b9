// The triggers refuse UPDATE and DELETE from any client: here, the `sqlite3` shell.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "backbone/event_store.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

struct ShellResult {
  int status;
  std::string output;  // stdout and stderr together
};

ShellResult sqlite3_shell(const std::string& db, const std::string& sql, const TempDir& dir) {
  const std::string script = dir.file("script.sql");
  std::ofstream(script) << sql << "\n";
  const std::string cmd = "sqlite3 -bail '" + db + "' < '" + script + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class SqliteShell : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system("command -v sqlite3 >/dev/null"), 0)
        << "the sqlite3 shell is missing: run scripts/install-deps.sh";
    StoreOptions o;
    o.url = harness_.url();
    o.role = Role::kMigrator;
    o.clock = &clock_;
    o.ids = &ids_;
    auto s = EventStore::open(o);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->migrate().ok());
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "1";
    d.source = "crm";
    d.changes = R"({"a":1})";
    event_ = *Event::create(d, ids_, clock_);
    ASSERT_TRUE((*s)->append(std::span(&*event_, 1)).ok());
  }
  ShellResult sh(const std::string& sql) {
    return sqlite3_shell(harness_.db_path(), sql, harness_.dir());
  }
  std::string id() const { return "'" + event_->id().str() + "'"; }

  ManualClock clock_;
  EventIdGenerator ids_{clock_, 1};
  SqliteHarness harness_;
  std::optional<Event> event_;
};

TEST_F(SqliteShell, UpdateFailsWithTheExactMessage) {
  auto r = sh("UPDATE events SET source = 'x' WHERE id = " + id() + ";");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("Event records are immutable and cannot be updated."), std::string::npos)
      << r.output;
  EXPECT_NE(sh("SELECT source FROM events;").output.find("crm"), std::string::npos);
}

TEST_F(SqliteShell, DeleteFailsWithTheExactMessage) {
  auto r = sh("DELETE FROM events;");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("Event records are immutable and cannot be deleted."), std::string::npos)
      << r.output;
  EXPECT_EQ(sh("SELECT COUNT(*) FROM events;").output, "1\n");
}

TEST_F(SqliteShell, ProcessedGoesFromZeroToOneButNotBack) {
  auto up = sh("UPDATE events SET processed = 1 WHERE id = " + id() + ";");
  EXPECT_EQ(up.status, 0) << up.output;
  auto down = sh("UPDATE events SET processed = 0 WHERE id = " + id() + ";");
  EXPECT_NE(down.status, 0);
  EXPECT_NE(down.output.find("Event records are immutable and cannot be updated."),
            std::string::npos);
  EXPECT_EQ(sh("SELECT processed FROM events;").output, "1\n");
}

TEST_F(SqliteShell, TheAuditLogRefusesUpdateAndDelete) {
  auto up = sh("UPDATE event_audit_log SET action = 'merged';");
  EXPECT_NE(up.status, 0);
  EXPECT_NE(up.output.find("Audit log records are immutable and cannot be updated."),
            std::string::npos)
      << up.output;
  auto del = sh("DELETE FROM event_audit_log;");
  EXPECT_NE(del.status, 0);
  EXPECT_NE(del.output.find("Audit log records are immutable and cannot be deleted."),
            std::string::npos)
      << del.output;
  auto replace = sh("INSERT OR REPLACE INTO event_audit_log SELECT * FROM event_audit_log;");
  EXPECT_NE(replace.status, 0);
  EXPECT_EQ(sh("SELECT COUNT(*) FROM event_audit_log WHERE action = 'ingested';").output, "1\n");
}

}  // namespace
}  // namespace backbone::testing
