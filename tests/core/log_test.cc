// The log's three forms (backbone/log.h): fields kept apart and quoted so that a collector
// parses them back, numbers bare in JSON, any bytes taken, and levels below the set one dropped.
#include "backbone/log.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

namespace backbone::log {
namespace {

const Timestamp kAt = Timestamp::from_micros(1'796'000'000'123'456);

TEST(Log, TextIsTimeLevelEventAndLogfmtFields) {
  const std::vector<Field> f = {{"method", "GET"}, {"status", 200}, {"why", "a \"quoted\" word"}};
  EXPECT_EQ(
      render(Format::kText, kAt, Level::kInfo, "http.request", f),
      kAt.to_rfc3339() + " info  http.request method=GET status=200 why=\"a \\\"quoted\\\" word\"");
}

TEST(Log, LogfmtQuotesWhatWouldBreakAPair) {
  const std::vector<Field> f = {{"a", ""}, {"b", "x=y"}, {"c", "two\nlines"}, {"d", "back\\slash"}};
  EXPECT_EQ(render(Format::kLogfmt, kAt, Level::kWarn, "stage error", f),
            "time=" + kAt.to_rfc3339() +
                " level=warn msg=\"stage error\" a=\"\" b=\"x=y\" c=\"two\\nlines\" "
                "d=\"back\\\\slash\"");
}

TEST(Log, JsonIsOneObjectWithNumbersBareAndAnyBytesTaken) {
  const std::vector<Field> f = {
      {"ms", 1.25}, {"count", uint64_t{7}}, {"path", "/a\"b"}, {"raw", std::string("\xff\xfe", 2)}};
  const std::string line = render(Format::kJson, kAt, Level::kError, "x", f);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], kAt.to_rfc3339());
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], "x");
  EXPECT_DOUBLE_EQ(j["ms"].get<double>(), 1.25);
  EXPECT_EQ(j["count"], 7);
  EXPECT_EQ(j["path"], "/a\"b");
  EXPECT_EQ(j["raw"], "\xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFD twice
}

TEST(Log, LinesBelowTheLevelAreDroppedAndTheRestWrittenWhole) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  configure(Format::kJson, Level::kInfo, out);
  debug("hidden", {{"a", 1}});
  info("shown", {{"a", 2}});
  error("also", {});
  configure(Format::kText, Level::kWarn, stderr);
  std::rewind(out);
  char buf[4096];
  std::vector<nlohmann::json> lines;
  while (std::fgets(buf, sizeof buf, out)) lines.push_back(nlohmann::json::parse(buf));
  std::fclose(out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["msg"], "shown");
  EXPECT_EQ(lines[0]["a"], 2);
  EXPECT_EQ(lines[1]["level"], "error");
}

TEST(Log, FormatsAreNamed) {
  EXPECT_EQ(*parse_format("logfmt"), Format::kLogfmt);
  EXPECT_EQ(*parse_format("json"), Format::kJson);
  EXPECT_EQ(parse_format("yaml").code(), Errc::kInvalidArgument);
}

}  // namespace
}  // namespace backbone::log
