// `backbone db grant` and `db check-grants` on a MariaDB server as a stock mariadb-install-db
// makes it (issue 19): anonymous accounts ''@'localhost' and ''@'<hostname>', and client
// addresses resolved to names. There, a role's login at '%' alone is refused from this machine
// ([1045] Access denied for user 'migrator'@'localhost'), since the server ranks the anonymous
// ''@'localhost' above it. The roles are made at 'localhost' too; the grant's log names the
// anonymous accounts; and a login still refused is explained by them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "serve_process.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

class StockMariadb : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v mariadb-install-db > /dev/null") != 0) {
      GTEST_SKIP() << "no MariaDB server installed";
    }
    // The server runs as the mysql user, which must reach its folder.
    std::filesystem::permissions(
        dir_.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                         std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                         std::filesystem::perms::others_exec);
    ::setenv("BACKBONE_MARIADB_STOCK", "1", 1);
    admin_url_ = run_test_script("test-db.sh", "start mariadb '" + dir_.file("server") + "' " +
                                                   std::to_string(free_loopback_port()));
    ::unsetenv("BACKBONE_MARIADB_STOCK");
    ASSERT_EQ(admin_url_.rfind("mysql://backbone_admin:", 0), 0u) << admin_url_;
    store_ = admin_url_.substr(0, admin_url_.rfind('/')) + "/backbone_stock";
    for (const char* role : {"MIGRATOR", "SYNC_WORKER", "MERGE_WORKER", "READER"}) {
      ::setenv((std::string("BACKBONE_ROLE_PASSWORD_") + role).c_str(),
               (std::string("stock-") + role).c_str(), 1);
    }
  }
  void TearDown() override {
    if (!admin_url_.empty())
      run_test_script("test-db.sh", "stop mariadb '" + dir_.file("server") + "'");
  }
  std::pair<int, std::string> cli(const std::string& args) {
    return run_cli("--store '" + store_ + "' " + args + " 2>&1");
  }
  // Runs SQL as root over the server's socket.
  bool root_sql(const std::string& sql) {
    return std::system(("mariadb --no-defaults --socket='" + dir_.file("server") +
                        "/mysqld.sock' -uroot -e \"" + sql + "\"")
                           .c_str()) == 0;
  }

  TempDir dir_;
  std::string admin_url_, store_;
};

TEST_F(StockMariadb, TheRolesLogInDespiteTheAnonymousAccounts) {
  auto [granted, log] = cli("db grant");
  ASSERT_EQ(granted, 0) << log;
  EXPECT_NE(log.find("anonymous account ''@'localhost': each role's login exists at 'localhost'"),
            std::string::npos)
      << log;
  auto [migrated, out] = cli("migrate");
  ASSERT_EQ(migrated, 0) << out;
  auto [checked, table] = cli("db check-grants");
  EXPECT_EQ(checked, 0) << table;
  EXPECT_NE(table.find("every role has exactly the privileges of SPEC §2"), std::string::npos)
      << table;
}

TEST_F(StockMariadb, ALoginThatTheAnonymousAccountShadowsIsExplained) {
  ASSERT_EQ(cli("db grant").first, 0);
  ASSERT_EQ(cli("migrate").first, 0);
  // As a grant of an earlier version left it: the reader at '%' only.
  ASSERT_TRUE(root_sql("DROP USER 'reader'@'localhost'"));
  auto [checked, out] = cli("db check-grants");
  EXPECT_NE(checked, 0) << out;
  EXPECT_NE(out.find("Access denied for user 'reader'@'localhost'"), std::string::npos) << out;
  EXPECT_NE(out.find("anonymous account ''@'localhost' ranks above a login at '%'"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("DROP USER ''@'localhost'"), std::string::npos) << out;
  // Granting again makes it work.
  ASSERT_EQ(cli("db grant").first, 0);
  EXPECT_EQ(cli("db check-grants").first, 0);
}

}  // namespace
}  // namespace backbone::testing
