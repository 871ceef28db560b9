// The seed's "no publisher hardcodes a topic name": no source file outside the topology module
// spells a topology name in a string literal. Names live in config/topology.toml alone.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace {

TEST(NoTopicLiterals, OnlyTheTopologyConfigSpellsTopicNames) {
  const std::filesystem::path root = BACKBONE_SOURCE_DIR;
  const std::regex literal(R"re("[^"\n]*events\.(raw|merged|error|dlq)[^"\n]*")re");
  std::vector<std::string> offenders;
  size_t scanned = 0;
  for (const char* top : {"src", "include"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(root / top)) {
      if (!e.is_regular_file()) continue;
      const auto ext = e.path().extension();
      if (ext != ".cc" && ext != ".h" && ext != ".in") continue;
      if (e.path().string().find("/src/topology/") != std::string::npos) continue;
      std::ifstream in(e.path());
      std::stringstream buf;
      buf << in.rdbuf();
      ++scanned;
      const std::string text = buf.str();
      for (std::sregex_iterator it(text.begin(), text.end(), literal), end; it != end; ++it) {
        offenders.push_back(e.path().lexically_relative(root).string() + ": " + it->str());
      }
    }
  }
  EXPECT_GT(scanned, 20u);
  EXPECT_TRUE(offenders.empty()) << [&] {
    std::string s;
    for (const auto& o : offenders) s += o + "\n";
    return s;
  }();
}

}  // namespace
