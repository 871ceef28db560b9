// The StoreHarness for the server backends (PostgreSQL, MySQL/MariaDB): a fresh database per
// test on the throwaway server that `make test` starts (scripts/test-db.sh; its admin URL in
// BACKBONE_TEST_POSTGRES_URL or BACKBONE_TEST_MYSQL_URL), with the four roles granted by the
// library's own `db grant`, and raw SQL run over a connection logged in as a role, so that the
// server's own grants and triggers answer.
#pragma once

#include <memory>
#include <string>

#include "store/event_store_conformance.h"
#include "test_servers.h"

namespace backbone::testing {

// Sets BACKBONE_ROLE_PASSWORD_<ROLE> to the tests' passwords, unless already set.
void set_test_role_passwords();

class ServerHarness final : public StoreHarness {
 public:
  // A new database on the server at `admin_url`, roles granted. Aborts the test on failure.
  explicit ServerHarness(const std::string& admin_url);
  ~ServerHarness() override;
  std::string url() override { return url_; }
  Result<void> raw_sql(Role role, const std::string& sql) override;
  Result<int64_t> raw_query_int(Role role, const std::string& sql) override;
  const std::string& database() const { return database_; }

 private:
  std::string admin_url_;
  std::string database_;
  std::string url_;
};

// nullptr when the scheme's test server is not running (see test_servers_required).
std::unique_ptr<StoreHarness> make_postgres_harness();
std::unique_ptr<StoreHarness> make_mysql_harness();

}  // namespace backbone::testing
