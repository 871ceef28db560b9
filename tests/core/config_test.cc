#include "backbone/config.h"

#include <gtest/gtest.h>

#include <map>

namespace backbone {
namespace {

EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Config, TheBuiltInDefaultHasExactlySandboxAndProduction) {
  auto c = parse_config("", "empty");
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->environments, (std::vector<std::string>{"sandbox", "production"}));
  EXPECT_EQ(c->env, "sandbox");
  EXPECT_EQ(c->store, "sqlite://var/{env}.db");
  EXPECT_EQ(c->durability, Durability::kFsync);
}

TEST(Config, EachEnvironmentGetsItsOwnStore) {
  auto c = parse_config("", "empty");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*store_url_for(*c, "sandbox"), "sqlite://var/sandbox.db");
  EXPECT_EQ(*store_url_for(*c, "production"), "sqlite://var/production.db");
  auto unknown = store_url_for(*c, "staging");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.code(), Errc::kNotFound);
  EXPECT_NE(unknown.error().message.find("staging"), std::string::npos);
}

TEST(Config, EnvironmentVariablesOverrideTheFile) {
  auto c = load_config(std::nullopt, fake_env({{"BACKBONE_ENV", "production"},
                                               {"BACKBONE_STORE", "sqlite:///tmp/{env}.db"},
                                               {"BACKBONE_LISTEN", "127.0.0.1:9999"}}));
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->env, "production");
  EXPECT_EQ(c->listen, "127.0.0.1:9999");
  EXPECT_EQ(*store_url_for(*c, c->env), "sqlite:///tmp/production.db");
}

TEST(Config, AnUnknownEnvironmentIsRefused) {
  auto c = load_config(std::nullopt, fake_env({{"BACKBONE_ENV", "prod"}}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), Errc::kNotFound);
}

TEST(Config, BadFilesNameTheKey) {
  auto c = parse_config("environments = \"sandbox\"", "x.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().where, "x.toml: environments");
  c = parse_config("durability = \"sometimes\"", "x.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().where, "x.toml: durability");
  c = parse_config("stor = \"sqlite://x\"", "x.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().where, "x.toml: stor");
  c = parse_config("env = ", "x.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), Errc::kInvalidArgument);
  c = parse_config("environments = [\"Prod\"]\nenv = \"Prod\"", "x.toml");
  ASSERT_FALSE(c.ok());
}

TEST(Config, TheClusterSectionIsReadAndChecked) {
  auto c = parse_config("", "x.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cluster_buckets, 64u);
  EXPECT_EQ(c->lease_ttl_ms, 10'000);
  c = parse_config("[cluster]\nbuckets = 8\nlease_ttl_ms = 2000", "x.toml");
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->cluster_buckets, 8u);
  EXPECT_EQ(c->lease_ttl_ms, 2000);
  for (const auto& [text, where] :
       {std::pair{"[cluster]\nbuckets = 0", "x.toml: cluster.buckets"},
        std::pair{"[cluster]\nbuckets = \"many\"", "x.toml: cluster.buckets"},
        std::pair{"[cluster]\nlease_ttl_ms = 5", "x.toml: cluster.lease_ttl_ms"},
        std::pair{"[cluster]\nbucket = 8", "x.toml: cluster.bucket"}}) {
    auto bad = parse_config(text, "x.toml");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_EQ(bad.error().where, where);
  }
}

TEST(Config, AMissingExplicitFileIsAnError) {
  auto c = load_config(std::string("/nonexistent/backbone.toml"), fake_env({}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.code(), Errc::kNotFound);
}

}  // namespace
}  // namespace backbone
