// Store URLs (src/store/store_url.h) and the server stores' URL parameters
// (src/store/sql/sql_login.h): what they parse to, and a clear error for each kind of bad URL.
#include "store/store_url.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "backbone/event_store.h"
#include "store/sql/sql_login.h"

namespace backbone {
namespace {

TEST(StoreUrl, ServerUrlsParseIntoTheirParts) {
  auto pg = parse_store_url(
      "postgres://ad%40min:p%3Ass@db.internal:6543/backbone_sandbox"
      "?role_prefix=sandbox_&pool_size=8");
  ASSERT_TRUE(pg.ok()) << pg.error().describe();
  EXPECT_EQ(pg->scheme, "postgresql");
  EXPECT_EQ(pg->user, "ad@min");
  EXPECT_EQ(pg->password, "p:ss");
  EXPECT_EQ(pg->host, "db.internal");
  EXPECT_EQ(pg->port, 6543);
  EXPECT_EQ(pg->database, "backbone_sandbox");
  EXPECT_EQ(pg->params.at("role_prefix"), "sandbox_");
  auto settings = sql::server_store_settings(*pg);
  ASSERT_TRUE(settings.ok());
  EXPECT_EQ(settings->role_prefix, "sandbox_");
  EXPECT_EQ(settings->pool_size, 8u);
  EXPECT_EQ(sql::role_login_name(Role::kSyncWorker, *settings), "sandbox_sync_worker");

  auto my = parse_store_url("mysql://[::1]/events");
  ASSERT_TRUE(my.ok()) << my.error().describe();
  EXPECT_EQ(my->host, "::1");
  EXPECT_EQ(my->port, 0);  // the server's default
  EXPECT_TRUE(my->user.empty());
}

TEST(StoreUrl, EachKindOfBadUrlGetsAClearError) {
  const std::pair<const char*, const char*> bad[] = {
      {"postgresql://host:5432", "no database name"},
      {"postgresql://host:99999/db", "bad port"},
      {"postgresql://host:54x/db", "bad port"},
      {"mysql://:3306/db", "no host"},
      {"mysql://[::1/db", "unclosed ["},
      {"mysql://u:p%zz@host/db", "malformed %-escape"},
      {"mysql://host/db?pool_size", "want param=value"},
      {"oracle://host/db", "unknown scheme"},
      {"postgresql://host/backbone_{env}", "\"{env}\" was not replaced"},
  };
  for (const auto& [url, why] : bad) {
    auto r = parse_store_url(url);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.code(), Errc::kInvalidArgument) << url;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << url << ": " << r.error().message;
  }
}

TEST(StoreUrl, BadServerParametersAreRefused) {
  const std::pair<const char*, const char*> bad[] = {
      {"postgresql://h/db?pool_size=0", "pool_size=0"},
      {"postgresql://h/db?pool_size=many", "pool_size=many"},
      {"postgresql://h/db?role_prefix=Sandbox-", "role_prefix"},
      {"postgresql://h/db?colour=blue", "unknown store URL parameter \"colour\""},
  };
  for (const auto& [text, why] : bad) {
    auto url = parse_store_url(text);
    ASSERT_TRUE(url.ok()) << text;
    auto s = sql::server_store_settings(*url);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.code(), Errc::kInvalidArgument);
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
    // Opening such a store fails the same way, before any connection is tried.
    StoreOptions o;
    o.url = text;
    EXPECT_EQ(EventStore::open(o).code(), Errc::kInvalidArgument) << text;
  }
}

TEST(StoreUrl, PasswordsAreHiddenWhenAUrlIsShown) {
  EXPECT_EQ(redact_store_url("mysql://root:s3cret@127.0.0.1:3306/db"),
            "mysql://root:***@127.0.0.1:3306/db");
  EXPECT_EQ(redact_store_url("postgresql://user@host/db"), "postgresql://user@host/db");
  EXPECT_EQ(redact_store_url("sqlite://var/sandbox.db"), "sqlite://var/sandbox.db");
  auto r = parse_store_url("mysql://root:s3cret@host:0/db");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("s3cret"), std::string::npos) << r.error().message;
}

TEST(StoreUrl, RolePasswordsComeFromTheEnvironment) {
  EXPECT_EQ(sql::role_password_variable(Role::kMergeWorker), "BACKBONE_ROLE_PASSWORD_MERGE_WORKER");
  setenv("BACKBONE_ROLE_PASSWORD_READER", "from-env", 1);
  auto url = parse_store_url("postgresql://admin:adminpw@h/db");
  auto login = sql::role_login(*url, *sql::server_store_settings(*url), Role::kReader);
  EXPECT_EQ(login.user, "reader");
  EXPECT_EQ(login.password, "from-env");
  EXPECT_EQ(login.database, "db");
}

TEST(StoreUrl, AnUnreachableServerIsUnavailable) {
  // Port 1 on loopback: nothing listens there; the refusal is immediate.
  StoreOptions o;
  o.url = "postgresql://127.0.0.1:1/db?connect_timeout_s=2";
  EXPECT_EQ(EventStore::open(o).code(), Errc::kUnavailable);
  o.url = "mysql://127.0.0.1:1/db?connect_timeout_s=2";
  EXPECT_EQ(EventStore::open(o).code(), Errc::kUnavailable);
}

}  // namespace
}  // namespace backbone
