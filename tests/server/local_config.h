// The built-in config with everything in a test's temporary folder: a SQLite store per
// environment, the embedded broker, and the token file; and `serve`'s App on it.
#pragma once

#include <gtest/gtest.h>

#include "backbone/config.h"
#include "server/app.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {

inline Config local_config(const TempDir& dir) {
  auto c = parse_config("", "test");
  EXPECT_TRUE(c.ok());
  Config config = c.ok() ? *c : Config();
  config.store = "sqlite://" + dir.file("{env}.db");
  config.broker = "embedded://" + dir.file("broker");
  config.tokens = dir.file("tokens.json");
  return config;
}

// `serve`'s App on local_config(dir) and `clock`, its stages driven by the test (step()).
inline std::unique_ptr<server::App> open_local_app(const TempDir& dir, const backbone::Clock& clock,
                                                   std::vector<std::string> envs = {}) {
  server::AppOptions o;
  o.config = local_config(dir);
  o.clock = &clock;
  o.start_stages = false;
  o.envs = std::move(envs);
  auto app = server::App::open(o);
  EXPECT_TRUE(app.ok()) << app.error().describe();
  return app.ok() ? std::move(*app) : nullptr;
}

}  // namespace backbone::testing
