#include "store/server_harness.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "store/open/store_open.h"
#include "store/sql/role_grants.h"
#include "store/sql/sql_dialect.h"
#include "store/sql/sql_login.h"

namespace backbone::testing {
void set_test_role_passwords() {
  for (Role r : {Role::kMigrator, Role::kSyncWorker, Role::kMergeWorker, Role::kReader}) {
    setenv(sql::role_password_variable(r).c_str(),
           (std::string("test-") + role_name(r) + "-pw").c_str(), 0);
  }
}

ServerHarness::ServerHarness(const std::string& admin_url) : admin_url_(admin_url) {
  static std::atomic<int> counter{0};
  database_ = "bbt_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
  url_ = with_database(admin_url, database_);
  set_test_role_passwords();
  auto granted = sql::grant_roles(url_, server_store_dialect(url_));
  EXPECT_TRUE(granted.ok()) << granted.error().describe();
}

ServerHarness::~ServerHarness() {
  auto url = parse_store_url(url_);
  if (!url.ok()) return;
  const sql::SqlDialect& d = *server_store_dialect(*url);
  auto settings = sql::server_store_settings(*url);
  auto c = d.connect(sql::admin_login(*url, *settings, d.maintenance_database()));
  if (!c.ok()) return;
  auto dropped = d.drop_database(**c, database_);
  EXPECT_TRUE(dropped.ok()) << dropped.error().describe();
}

Result<void> ServerHarness::raw_sql(Role role, const std::string& sql) {
  auto url = parse_store_url(url_);
  if (!url.ok()) return url.error();
  auto settings = sql::server_store_settings(*url);
  auto c = server_store_dialect(*url)->connect(sql::role_login(*url, *settings, role));
  if (!c.ok()) return c.error();
  return (*c)->exec(sql);
}

Result<int64_t> ServerHarness::raw_query_int(Role role, const std::string& sql) {
  auto url = parse_store_url(url_);
  if (!url.ok()) return url.error();
  auto settings = sql::server_store_settings(*url);
  auto c = server_store_dialect(*url)->connect(sql::role_login(*url, *settings, role));
  if (!c.ok()) return c.error();
  auto rows = (*c)->run(sql);
  if (!rows.ok()) return rows.error();
  if (rows->rows.empty() || !rows->rows[0][0]) return make_error(Errc::kNotFound, "no row");
  return std::strtoll(rows->rows[0][0]->c_str(), nullptr, 10);
}

std::unique_ptr<StoreHarness> make_postgres_harness() {
  const std::string url = test_server_url("postgresql");
  if (url.empty()) return nullptr;
  return std::make_unique<ServerHarness>(url);
}

std::unique_ptr<StoreHarness> make_mysql_harness() {
  const std::string url = test_server_url("mysql");
  if (url.empty()) return nullptr;
  return std::make_unique<ServerHarness>(url);
}

}  // namespace backbone::testing
