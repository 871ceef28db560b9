#include "backbone/canonical_json.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <random>

namespace backbone {
namespace {

double from_bits(uint64_t bits) { return std::bit_cast<double>(bits); }

// RFC 8785 Appendix B: IEEE 754 values and their expected serialization.
TEST(CanonicalJson, NumbersFollowRfc8785AppendixB) {
  const struct {
    uint64_t bits;
    const char* want;
  } cases[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_canonical_number(from_bits(c.bits)), c.want) << std::hex << c.bits;
  }
}

// RFC 8785 §3.2.4: the whole transformation of the RFC's own example.
TEST(CanonicalJson, TransformsTheRfcExample) {
  const std::string in = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  const std::string want =
      "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
      "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
  auto got = canonicalize_json(in);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_EQ(*got, want);
}

// RFC 8785 §3.2.3: keys sort by UTF-16 code units, not by UTF-8 bytes.
TEST(CanonicalJson, SortsKeysByUtf16CodeUnits) {
  const std::string in =
      R"({"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh",)"
      R"("1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control",)"
      R"("\u00f6":"Latin Small Letter O With Diaeresis"})";
  auto got = canonicalize_json(in);
  ASSERT_TRUE(got.ok()) << got.error().describe();
  const std::string want =
      "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
      "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
      "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
      "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}";
  EXPECT_EQ(*got, want);
}

TEST(CanonicalJson, RefusesWhatIsNotIJson) {
  for (const char* bad : {"{", "{\"a\":1,\"a\":2}", "[1,]", "{\"a\":9007199254740993}",
                          "{\"a\":-9007199254740993}", "\"\xff\"", "{\"a\":1} trailing", "1e400"}) {
    auto r = canonicalize_json(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.code(), Errc::kInvalidArgument) << bad;
    }
  }
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  EXPECT_FALSE(canonicalize_json(deep).ok());
  std::string ok_depth(kMaxJsonDepth, '[');
  ok_depth += std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(canonicalize_json(ok_depth).ok());
}

TEST(CanonicalJson, KeepsSafeIntegersExactly) {
  EXPECT_EQ(*canonicalize_json("[9007199254740991,-9007199254740991,0,-0,1.0,100]"),
            "[9007199254740991,-9007199254740991,0,0,1,100]");
}

// Property: re-serializing with shuffled keys and random whitespace never changes the
// canonical form.
TEST(CanonicalJson, KeyOrderAndWhitespaceNeverChangeTheResult) {
  std::mt19937 rng(12345);
  auto ws = [&] {
    static const char* kWs[] = {"", " ", "\n", "\t", "  \r\n "};
    return std::string(kWs[rng() % 5]);
  };
  for (int round = 0; round < 200; ++round) {
    std::vector<std::pair<std::string, std::string>> members;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      const std::string key = "k" + std::to_string(rng() % 1000) + "_" + std::to_string(i);
      std::string value;
      switch (rng() % 5) {
        case 0:
          value = std::to_string(static_cast<int>(rng() % 100000) - 50000);
          break;
        case 1:
          value = std::to_string((rng() % 100000) / 7.0);
          break;
        case 2:
          value = "\"v\\u00e9" + std::to_string(rng()) + "\"";
          break;
        case 3:
          value = "[true,null,{\"z\":1,\"a\":[2,3]}]";
          break;
        default:
          value = "{\"y\":\"\\n\",\"x\":-0.5}";
          break;
      }
      members.emplace_back(key, value);
    }
    auto render = [&] {
      std::string s = "{" + ws();
      for (size_t i = 0; i < members.size(); ++i) {
        if (i) s += "," + ws();
        s += "\"" + members[i].first + "\"" + ws() + ":" + ws() + members[i].second + ws();
      }
      return s + "}";
    };
    auto first = canonicalize_json(render());
    ASSERT_TRUE(first.ok()) << first.error().describe();
    std::shuffle(members.begin(), members.end(), rng);
    auto second = canonicalize_json(render());
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(*first, *second);
    EXPECT_EQ(*canonicalize_json(*first), *first);  // canonical form is a fixed point
  }
}

}  // namespace
}  // namespace backbone
