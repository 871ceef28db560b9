// The seed's one criterion it could not check, on the real servers and in their own clients:
// logged in as sync_worker, UPDATE and DELETE on events and event_audit_log are refused by the
// database with its access-denied error (PostgreSQL SQLSTATE 42501, MariaDB error 1142), while
// SELECT and INSERT work; and the immutability triggers answer any client with SPEC §2's
// messages.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "backbone/event_store.h"
#include "store/open/store_open.h"
#include "store/server_harness.h"
#include "store/sql/role_grants.h"
#include "store/sql/sql_login.h"
#include "store/store_url.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

// Runs `command` through the shell; returns what it printed (stdout and stderr).
std::string shell(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class ServerClients : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    BACKBONE_REQUIRE_TEST_SERVER(GetParam());
    const std::string admin = test_server_url(GetParam());
    harness_ = std::make_unique<ServerHarness>(admin);
    StoreOptions o;
    o.url = harness_->url();
    o.role = Role::kMigrator;
    auto store = EventStore::open(o);
    ASSERT_TRUE(store.ok()) << store.error().describe();
    ASSERT_TRUE((*store)->migrate().ok());
    auto url = parse_store_url(harness_->url());
    ASSERT_TRUE(url.ok());
    url_ = *url;
    // One event and its audit entry, stored by the library as sync_worker.
    o.role = Role::kSyncWorker;
    auto sync = EventStore::open(o);
    ASSERT_TRUE(sync.ok()) << sync.error().describe();
    EventDraft d;
    d.record_type = "contact";
    d.record_id = "1";
    d.source = "crm";
    d.changes = R"({"a":1})";
    auto e = Event::create(d, EventIdGenerator::process(), SystemClock::instance());
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE((*sync)->append(std::span(&*e, 1)).ok());
  }

  // Runs `sql` (statements separated by ';' and newlines) in the server's own client, logged
  // in as `role`, going on after errors.
  std::string client(Role role, const std::string& sql) {
    const std::string user = sql::role_login_name(role, {});
    const char* pw = std::getenv(sql::role_password_variable(role).c_str());
    const std::string port = std::to_string(url_.port);
    if (GetParam() == "postgresql") {
      setenv("PGPASSWORD", pw, 1);
      return shell("printf '%s\\n' \"" + sql + "\" | psql -X -h " + url_.host + " -p " + port +
                   " -U " + user + " -d " + url_.database + " -v ON_ERROR_STOP=0");
    }
    setenv("MYSQL_PWD", pw, 1);
    return shell("printf '%s\\n' \"" + sql + "\" | mariadb --no-defaults --force -h " + url_.host +
                 " -P " + port + " -u " + user + " " + url_.database);
  }

  std::unique_ptr<ServerHarness> harness_;
  StoreUrl url_;
};

TEST_P(ServerClients, SyncWorkerIsRefusedUpdateAndDeleteByTheDatabaseItself) {
  const std::string out = client(Role::kSyncWorker,
                                 "UPDATE events SET source = 'x';\n"
                                 "DELETE FROM events;\n"
                                 "UPDATE event_audit_log SET action = 'merged';\n"
                                 "DELETE FROM event_audit_log;\n"
                                 "SELECT COUNT(*) AS n_events FROM events;\n"
                                 "SELECT COUNT(*) AS n_audit FROM event_audit_log;");
  SCOPED_TRACE(out);
  if (GetParam() == "postgresql") {
    EXPECT_EQ(count(out, "ERROR:  permission denied for table events"), 2u);
    EXPECT_EQ(count(out, "ERROR:  permission denied for table event_audit_log"), 2u);
  } else {
    EXPECT_EQ(count(out, "ERROR 1142 (42000)"), 4u);
    EXPECT_EQ(count(out, "UPDATE command denied to user 'sync_worker'"), 2u);
    EXPECT_EQ(count(out, "DELETE command denied to user 'sync_worker'"), 2u);
  }
  // SELECT worked: one event, one audit entry, both still there.
  EXPECT_NE(out.find("n_events"), std::string::npos);
  EXPECT_NE(out.find("n_audit"), std::string::npos);
  EXPECT_EQ(*harness_->raw_query_int(Role::kMigrator, "SELECT COUNT(*) FROM events"), 1);
  EXPECT_EQ(*harness_->raw_query_int(Role::kMigrator, "SELECT COUNT(*) FROM event_audit_log"), 1);
}

TEST_P(ServerClients, SyncWorkerMayInsertInItsClient) {
  const std::string out = client(
      Role::kSyncWorker,
      "INSERT INTO events (id, record_type, record_id, source, timestamp, base_version, changes)"
      " VALUES ('01890a5d-ac96-774b-bcce-b302099a8057', 'contact', '2', 'crm',"
      " '2026-11-28 10:00:00', 0, '{}');");
  SCOPED_TRACE(out);
  EXPECT_EQ(out.find("ERROR"), std::string::npos);
  EXPECT_EQ(*harness_->raw_query_int(Role::kMigrator, "SELECT COUNT(*) FROM events"), 2);
}

TEST_P(ServerClients, TheTriggersRefuseTheMigratorInItsClientWithTheExactMessages) {
  const std::string out = client(Role::kMigrator,
                                 "UPDATE events SET source = 'x';\n"
                                 "DELETE FROM events;\n"
                                 "UPDATE event_audit_log SET action = 'merged';\n"
                                 "DELETE FROM event_audit_log;");
  SCOPED_TRACE(out);
  for (const char* m : {"Event records are immutable and cannot be updated.",
                        "Event records are immutable and cannot be deleted.",
                        "Audit log records are immutable and cannot be updated.",
                        "Audit log records are immutable and cannot be deleted."}) {
    EXPECT_EQ(count(out, m), 1u) << m;
  }
  EXPECT_EQ(*harness_->raw_query_int(Role::kMigrator, "SELECT COUNT(*) FROM events"), 1);
}

// `db check-grants` reads the server's answers: an extra privilege shows, and `db grant` takes
// it away again.
TEST_P(ServerClients, CheckGrantsSeesAnExtraPrivilegeAndGrantRepairsIt) {
  auto differences = [&]() {
    auto probes = sql::check_grants(harness_->url(), server_store_dialect(harness_->url()));
    EXPECT_TRUE(probes.ok()) << probes.error().describe();
    std::vector<std::string> out;
    if (!probes.ok()) return out;
    EXPECT_EQ(probes->size(), 4u * 33u);  // 33 probes (role_grants.cc) for each role
    for (const auto& p : *probes) {
      if (p.allowed != p.expected) out.push_back(std::string(role_name(p.role)) + " " + p.probe);
    }
    return out;
  };
  EXPECT_EQ(differences(), std::vector<std::string>{});
  const std::string to = GetParam() == "postgresql" ? "sync_worker" : "'sync_worker'@'%'";
  ASSERT_TRUE(harness_->raw_sql(Role::kMigrator, "GRANT DELETE ON events TO " + to).ok());
  EXPECT_EQ(differences(), std::vector<std::string>{"sync_worker events: DELETE"});
  auto repaired = sql::grant_roles(harness_->url(), server_store_dialect(harness_->url()));
  ASSERT_TRUE(repaired.ok()) << repaired.error().describe();
  EXPECT_EQ(differences(), std::vector<std::string>{});
}

// A role whose password is wrong is refused by the server when the store opens.
TEST_P(ServerClients, AWrongRolePasswordIsPermissionDenied) {
  const std::string variable = sql::role_password_variable(Role::kReader);
  const std::string right = std::getenv(variable.c_str());
  setenv(variable.c_str(), "not-the-password", 1);
  StoreOptions o;
  o.url = harness_->url();
  o.role = Role::kReader;
  auto store = EventStore::open(o);
  setenv(variable.c_str(), right.c_str(), 1);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.code(), Errc::kPermissionDenied) << store.error().describe();
  EXPECT_NE(store.error().message.find("reader"), std::string::npos);
  EXPECT_TRUE(EventStore::open(o).ok());
}

INSTANTIATE_TEST_SUITE_P(Servers, ServerClients, ::testing::Values("postgresql", "mysql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace backbone::testing
