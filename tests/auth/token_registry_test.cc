// TokenRegistry on a manual clock, over real SQLite stores: tokens made, revoked or expired in
// a store count in a registry that reads it, and their use is recorded.
#include "auth/token_registry.h"

#include <gtest/gtest.h>

#include "auth/tokens.h"
#include "backbone/sha256.h"
#include "store/sqlite_harness.h"

namespace backbone::auth {
namespace {

class Registry : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = open(Role::kMigrator);
    ASSERT_TRUE(admin_);
    ASSERT_TRUE(admin_->migrate().ok());
    serving_ = open(Role::kSyncWorker);
    ASSERT_TRUE(serving_);
    registry_.add_env("sandbox", *serving_);
  }
  std::unique_ptr<EventStore> open(Role role) {
    return testing::open_sqlite_store(dir_.file("sandbox.db"), role, &clock_);
  }
  std::string make(const std::vector<std::string>& roles, std::optional<int64_t> ttl_us = {}) {
    auto t = create_token(*admin_, "sandbox", "ci", roles, ttl_us, clock_.now(), "test");
    EXPECT_TRUE(t.ok()) << t.error().describe();
    return t.ok() ? t->token : std::string();
  }
  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<EventStore> admin_, serving_;
  TokenRegistry registry_{clock_};
};

TEST_F(Registry, ATokenMadeInTheStoreWorksAtOnceWithItsRoles) {
  const std::string t = make({"publish", "read"});
  auto who = registry_.authenticate_bearer("Bearer " + t);
  ASSERT_TRUE(who.ok()) << who.error().describe();
  EXPECT_EQ(who->env, "sandbox");
  EXPECT_EQ(who->name, "ci");
  EXPECT_EQ(who->permissions, (Permissions{Permission::kPublish, Permission::kRead}));
  EXPECT_EQ(t.rfind("bb_sandbox_", 0), 0u);
  // Only the hash is stored.
  auto rows = admin_->tokens();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].sha256, sha256_hex(t));
}

TEST_F(Registry, UnknownTokensAreRefusedAndReadTheStoreAtMostEvery100ms) {
  EXPECT_EQ(registry_.authenticate("bb_sandbox_" + std::string(32, 'x')).code(),
            Errc::kUnauthenticated);
  // Within 100 ms of that miss, a token made meanwhile is not looked for yet...
  const std::string t = make({"read"});
  clock_.advance_millis(50);
  EXPECT_EQ(registry_.authenticate(t).code(), Errc::kUnauthenticated);
  // ...after it, it is; and refresh() reads it in any case.
  clock_.advance_millis(50);
  EXPECT_TRUE(registry_.authenticate(t).ok());
  const std::string u = make({"read"});
  ASSERT_TRUE(registry_.refresh().ok());
  EXPECT_TRUE(registry_.authenticate(u).ok());
  // Other environments and other shapes are unknown.
  EXPECT_EQ(registry_.authenticate("bb_production_" + std::string(32, 'x')).code(),
            Errc::kUnauthenticated);
  EXPECT_EQ(registry_.authenticate("nonsense").code(), Errc::kUnauthenticated);
  EXPECT_EQ(registry_.authenticate_bearer("").code(), Errc::kUnauthenticated);
  EXPECT_EQ(registry_.authenticate_bearer("Basic abc").code(), Errc::kUnauthenticated);
}

TEST_F(Registry, ARevokedTokenStopsAtTheNextRefreshAndSaysSo) {
  const std::string t = make({"read"});
  ASSERT_TRUE(registry_.authenticate(t).ok());
  auto revoked = revoke_token(*admin_, "ci", clock_.now(), "test");
  ASSERT_TRUE(revoked.ok()) << revoked.error().describe();
  EXPECT_TRUE(registry_.authenticate(t).ok()) << "known here until the next refresh";
  ASSERT_TRUE(registry_.refresh().ok());
  auto refused = registry_.authenticate(t);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::kUnauthenticated);
  EXPECT_NE(refused.error().message.find("was revoked"), std::string::npos)
      << refused.error().message;
  // By name it is gone; by id it is found, and revoked already.
  EXPECT_EQ(revoke_token(*admin_, "ci", clock_.now(), "test").code(), Errc::kNotFound);
  auto again = revoke_token(*admin_, token_id(sha256_hex(t)), clock_.now(), "test");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->revoked_at.has_value());
}

TEST_F(Registry, AnExpiredTokenIsRefusedWithItsExpiry) {
  const std::string t = make({"read"}, 60'000'000);
  ASSERT_TRUE(registry_.authenticate(t).ok());
  clock_.advance_millis(59'999);
  EXPECT_TRUE(registry_.authenticate(t).ok());
  clock_.advance_millis(1);
  auto refused = registry_.authenticate(t);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Errc::kUnauthenticated);
  EXPECT_NE(refused.error().message.find("expired at"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(create_token(*admin_, "sandbox", "x", {"read"}, 0, clock_.now(), "test").code(),
            Errc::kInvalidArgument);
}

TEST_F(Registry, UsesAreWrittenWhenFlushedAsTheLatestPerToken) {
  const std::string t = make({"read"});
  ASSERT_TRUE(registry_.authenticate(t).ok());
  clock_.advance_millis(1500);
  const Timestamp last = clock_.now();
  ASSERT_TRUE(registry_.authenticate(t).ok());
  EXPECT_FALSE((*admin_->tokens())[0].last_used_at.has_value()) << "not before a flush";
  ASSERT_TRUE(registry_.flush_uses().ok());
  EXPECT_EQ((*admin_->tokens())[0].last_used_at, std::optional<Timestamp>(last));
}

TEST_F(Registry, BadRolesNamesAndAmbiguousRevocationsAreRefused) {
  EXPECT_EQ(create_token(*admin_, "sandbox", "x", {"root"}, {}, clock_.now(), "test").code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(create_token(*admin_, "sandbox", "x", {}, {}, clock_.now(), "test").code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(create_token(*admin_, "sandbox", "", {"read"}, {}, clock_.now(), "test").code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(create_token(*serving_, "sandbox", "x", {"read"}, {}, clock_.now(), "test").code(),
            Errc::kPermissionDenied);
  make({"read"});
  make({"admin"});  // two tokens named "ci"
  auto two = revoke_token(*admin_, "ci", clock_.now(), "test");
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.code(), Errc::kInvalidArgument);
  EXPECT_NE(two.error().message.find("2 tokens"), std::string::npos);
}

TEST_F(Registry, TheTokensOfAFileAreImportedOnceIntoTheirEnvironmentsStore) {
  auto file = TokenFile::open(dir_.file("tokens.json"));
  ASSERT_TRUE(file.ok());
  const std::string mine = *file->create("old", "sandbox", {"publish"});
  (void)*file->create("theirs", "production", {"read"});
  auto n = import_tokens(*admin_, "sandbox", file->entries(), clock_.now());
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(*import_tokens(*admin_, "sandbox", file->entries(), clock_.now()), 0u);
  auto who = registry_.authenticate(mine);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->name, "old");
  EXPECT_EQ(who->permissions, (Permissions{Permission::kPublish}));
}

}  // namespace
}  // namespace backbone::auth
