// IamPolicies over real SQLite stores: what a policy grants a token on one resource, what it
// refuses to keep, and that a policy set through one process counts on another once it reads
// the store again.
#include "auth/iam_policies.h"

#include <gtest/gtest.h>

#include "store/sqlite_harness.h"

namespace backbone::auth {
namespace {

class Iam : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = open(Role::kMigrator);
    ASSERT_TRUE(admin_);
    ASSERT_TRUE(admin_->migrate().ok());
    serving_ = open(Role::kSyncWorker);
    ASSERT_TRUE(serving_);
    here_.add_env("sandbox", *serving_, admin_.get());
    there_.add_env("sandbox", *serving_, nullptr);
  }
  std::unique_ptr<EventStore> open(Role role) {
    return testing::open_sqlite_store(dir_.file("sandbox.db"), role, &clock_);
  }
  static Principal token(const std::string& name, Permissions p, std::string env = "sandbox") {
    return Principal{name, std::move(env), p, "0123456789ab"};
  }
  testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<EventStore> admin_, serving_;
  IamPolicies here_, there_;  // two processes of one environment
};

TEST_F(Iam, ABindingGrantsItsRoleToTheTokensItNamesOnThatResourceOnly) {
  const Principal ci = token("ci", {Permission::kRead});
  const Principal other = token("other", {Permission::kRead});
  EXPECT_FALSE(here_.may(ci, Permission::kPublish, "topics/orders"));
  auto set = here_.set("sandbox", "topics/orders",
                       {{"roles/pubsub.publisher", {"token:ci", "serviceAccount:x@y.com"}},
                        {"roles/pubsub.viewer", {"allAuthenticatedUsers"}}},
                       0, "token 0123 (ops)", clock_.now());
  ASSERT_TRUE(set.ok()) << set.error().describe();
  EXPECT_EQ(set->version, 1);
  EXPECT_TRUE(here_.may(ci, Permission::kPublish, "topics/orders"));
  EXPECT_FALSE(here_.may(ci, Permission::kPublish, "topics/payments")) << "another resource";
  EXPECT_FALSE(here_.may(other, Permission::kPublish, "topics/orders")) << "another token";
  EXPECT_FALSE(here_.may(ci, Permission::kAdmin, "topics/orders")) << "publisher is not admin";
  EXPECT_FALSE(here_.may(token("ci", {}, "production"), Permission::kPublish, "topics/orders"))
      << "another environment's token of the same name";
  EXPECT_TRUE(here_.may(token("none", {}), Permission::kRead, "topics/orders"))
      << "allAuthenticatedUsers names every token of the environment";
  // A token's own roles count everywhere, bindings or not.
  EXPECT_TRUE(here_.may(token("ops", {Permission::kAdmin}), Permission::kPublish, "topics/x"));

  // The other process sees it once it reads the store again.
  EXPECT_FALSE(there_.may(ci, Permission::kPublish, "topics/orders"));
  ASSERT_TRUE(there_.refresh().ok());
  EXPECT_TRUE(there_.may(ci, Permission::kPublish, "topics/orders"));
  auto read = there_.get("sandbox", "topics/orders");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, *set);
  EXPECT_EQ(there_.set("sandbox", "topics/orders", {}, std::nullopt, "x", clock_.now()).code(),
            Errc::kPermissionDenied)
      << "a process without the administrator's store cannot set one";

  // The act is in the admin audit.
  auto acts = admin_->admin_actions(std::nullopt, 10);
  ASSERT_TRUE(acts.ok()) << acts.error().describe();
  ASSERT_EQ(acts->size(), 1u);
  EXPECT_EQ((*acts)[0].action, "iam.set");
  EXPECT_EQ((*acts)[0].target, "topics/orders");
  EXPECT_EQ((*acts)[0].actor, "token 0123 (ops)");
}

TEST_F(Iam, RefusesRolesItDoesNotMapBindingsWithoutMembersAndStaleVersions) {
  EXPECT_EQ(here_.set("sandbox", "topics/o", {{"roles/owner", {"token:ci"}}}, 0, "a", clock_.now())
                .code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(
      here_.set("sandbox", "topics/o", {{"roles/pubsub.viewer", {}}}, 0, "a", clock_.now()).code(),
      Errc::kInvalidArgument);
  EXPECT_EQ(here_.set("nowhere", "topics/o", {}, 0, "a", clock_.now()).code(), Errc::kNotFound);
  ASSERT_TRUE(here_.set("sandbox", "topics/o", {}, 0, "a", clock_.now()).ok());
  EXPECT_EQ(here_.set("sandbox", "topics/o", {}, 0, "a", clock_.now()).code(), Errc::kConflict);
  EXPECT_TRUE(here_.set("sandbox", "topics/o", {}, 1, "a", clock_.now()).ok());
  auto acts = admin_->admin_actions(std::nullopt, 10);
  ASSERT_TRUE(acts.ok());
  EXPECT_EQ(acts->size(), 2u) << "refused sets are not recorded";
}

TEST(IamNames, MapPubsubRolesAndPermissionsOntoBackbones) {
  EXPECT_EQ(*iam_role_permission("roles/pubsub.subscriber"), Permission::kSubscribe);
  EXPECT_EQ(*iam_role_permission("roles/pubsub.editor"), Permission::kAdmin);
  EXPECT_EQ(iam_role_permission("roles/pubsub.owner").code(), Errc::kInvalidArgument);
  EXPECT_EQ(iam_permission_need("pubsub.topics.publish"), Permission::kPublish);
  EXPECT_EQ(iam_permission_need("pubsub.subscriptions.consume"), Permission::kSubscribe);
  EXPECT_EQ(iam_permission_need("pubsub.topics.get"), Permission::kRead);
  EXPECT_EQ(iam_permission_need("pubsub.topics.update"), Permission::kAdmin);
  EXPECT_EQ(iam_permission_need("storage.buckets.get"), std::nullopt);
  EXPECT_EQ(iam_permission_need("pubsub.topics"), std::nullopt);
}

}  // namespace
}  // namespace backbone::auth
