// Permissions, principals and the token file: typed permissions with their stored names, admin
// implying the rest, the environment check, and a token store that refuses unknown roles.
#include "auth/principal.h"

#include <gtest/gtest.h>

#include <fstream>

#include "auth/tokens.h"
#include "store/sqlite_harness.h"

namespace backbone::auth {
namespace {

TEST(Permission, NamesRoundTripAndAnUnknownNameIsRefused) {
  for (Permission p : kPermissions) {
    auto back = parse_permission(permission_name(p));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
  auto bad = parse_permission("write");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().where, "roles");
}

TEST(Principal, AdminAndPipelineImplyTheEverydayRolesAndOthersOnlyWhatTheyHold) {
  Principal reader{"r", "sandbox", {Permission::kRead}};
  Principal admin{"a", "sandbox", {Permission::kAdmin}};
  Principal pipeline{"p", "sandbox", {Permission::kPipeline}};
  EXPECT_TRUE(reader.may(Permission::kRead));
  EXPECT_FALSE(reader.may(Permission::kPublish));
  for (Permission p : {Permission::kPublish, Permission::kSubscribe, Permission::kRead}) {
    EXPECT_TRUE(admin.may(p));
    EXPECT_TRUE(pipeline.may(p));
  }
  EXPECT_TRUE(admin.may(Permission::kAdmin));
  EXPECT_FALSE(admin.may(Permission::kPipeline)) << "admin does not imply pipeline";
  EXPECT_TRUE(pipeline.may(Permission::kPipeline));
  EXPECT_FALSE(pipeline.may(Permission::kAdmin)) << "pipeline does not imply admin";
  EXPECT_TRUE(require(reader, Permission::kRead).ok());
  auto denied = require(reader, Permission::kPublish);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.code(), Errc::kPermissionDenied);
  EXPECT_NE(denied.error().message.find("\"publish\""), std::string::npos);
}

TEST(Principal, ATokenWorksOnlyInItsEnvironment) {
  Principal admin{"a", "sandbox", {Permission::kAdmin}};
  EXPECT_TRUE(require(admin, "sandbox", Permission::kPublish).ok());
  auto other = require(admin, "production", Permission::kRead);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.code(), Errc::kPermissionDenied);
  EXPECT_NE(other.error().message.find("production"), std::string::npos);
}

TEST(Permissions, NamesFollowTheCanonicalOrder) {
  Permissions ps{Permission::kAdmin, Permission::kPublish, Permission::kPublish};
  EXPECT_EQ(ps.names(), (std::vector<std::string>{"publish", "admin"}));
  EXPECT_FALSE(ps.has(Permission::kRead));
  EXPECT_TRUE(Permissions{}.empty());
}

TEST(TokenFile, ATokenAuthenticatesWithItsPermissionsAndBadRolesAreRefused) {
  testing::TempDir dir;
  auto store = TokenFile::open(dir.file("tokens.json"));
  ASSERT_TRUE(store.ok());
  auto t = store->create("ci", "sandbox", {"publish", "read"});
  ASSERT_TRUE(t.ok());
  auto who = store->authenticate_bearer("Bearer " + *t);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->env, "sandbox");
  EXPECT_EQ(who->permissions, (Permissions{Permission::kPublish, Permission::kRead}));
  EXPECT_EQ(store->authenticate("bb_sandbox_nope").code(), Errc::kUnauthenticated);
  EXPECT_EQ(store->create("x", "sandbox", {"publish", "root"}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(store->create("x", "sandbox", {}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(store->size(), 1u);

  // Reopened from the file, the token has the same permissions.
  auto again = TokenFile::open(dir.file("tokens.json"));
  ASSERT_TRUE(again.ok());
  auto who2 = again->authenticate(*t);
  ASSERT_TRUE(who2.ok());
  EXPECT_EQ(who2->permissions, who->permissions);
}

TEST(TokenFile, AFileWithAnUnknownRoleIsDamaged) {
  testing::TempDir dir;
  std::ofstream(dir.file("tokens.json"))
      << R"({"tokens":[{"sha256":"00","name":"n","env":"sandbox","roles":["superuser"]}]})";
  auto store = TokenFile::open(dir.file("tokens.json"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.code(), Errc::kDataLoss);
}

}  // namespace
}  // namespace backbone::auth
