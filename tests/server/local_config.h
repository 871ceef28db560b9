// The built-in config with everything in a test's temporary folder: a SQLite store per
// environment, the embedded broker, and the token file.
#pragma once

#include <gtest/gtest.h>

#include "backbone/config.h"
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

}  // namespace backbone::testing
