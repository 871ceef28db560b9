// SegmentLog alone: records appended, made durable by write_pending, read back by ref, found
// again by a reopen's scan; segments roll at their size, a torn tail is cut off, damage before
// the tail is data loss, and sealed segments below an offset are deleted.
#include "broker/embedded/segment_log.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "store/sqlite_harness.h"

namespace backbone::embedded {
namespace {

using testing::TempDir;

StoredMessage message(uint64_t offset, const std::string& data) {
  StoredMessage m;
  m.offset = offset;
  m.publish_time_us = 1'000'000 + static_cast<int64_t>(offset);
  m.ordering_key = "k" + std::to_string(offset % 3);
  m.attributes = {{"n", std::to_string(offset)}};
  m.data = data;
  return m;
}

class SegmentLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<SegmentLog> open(uint64_t segment_bytes = 1 << 20) {
    found_.clear();
    auto log = SegmentLog::open(dir_.file("topic"), segment_bytes,
                                [this](uint64_t off, const MsgRef& ref) { found_[off] = ref; });
    EXPECT_TRUE(log.ok()) << (log.ok() ? "" : log.error().describe());
    return log.ok() ? std::move(*log) : nullptr;
  }
  // Appends messages [from, to) and makes them durable; returns their refs by offset.
  std::map<uint64_t, MsgRef> append(SegmentLog& log, uint64_t from, uint64_t to,
                                    size_t bytes = 100) {
    std::map<uint64_t, MsgRef> refs;
    for (uint64_t off = from; off < to; ++off) {
      refs[off] = log.append(message(off, std::string(bytes, static_cast<char>('a' + off % 26))));
    }
    SegmentLog::Pending p;
    log.take_pending(p);
    EXPECT_TRUE(SegmentLog::write_pending(p).ok());
    return refs;
  }
  std::vector<std::filesystem::path> segment_files() {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_.file("topic"))) {
      out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir dir_;
  std::map<uint64_t, MsgRef> found_;
};

TEST_F(SegmentLogTest, RecordsReadBackAndAReopenFindsThemAll) {
  auto log = open();
  auto refs = append(*log, 0, 20);
  EXPECT_EQ(log->next_offset(), 20u);
  for (const auto& [off, ref] : refs) {
    auto m = log->read(ref);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->offset, off);
    EXPECT_EQ(m->data, message(off, std::string(100, static_cast<char>('a' + off % 26))).data);
    EXPECT_EQ(m->attributes.at("n"), std::to_string(off));
    EXPECT_EQ(ref.key_hash, ordering_key_hash(m->ordering_key));
  }
  log.reset();
  log = open();
  EXPECT_EQ(log->next_offset(), 20u);
  ASSERT_EQ(found_.size(), 20u);
  for (const auto& [off, ref] : refs) {
    EXPECT_EQ(found_[off].position, ref.position) << off;
    EXPECT_EQ(found_[off].segment, ref.segment) << off;
  }
}

TEST_F(SegmentLogTest, SegmentsRollAtTheirSizeAndSealedOnesAreDropped) {
  auto log = open(1024);
  auto refs = append(*log, 0, 30, 200);
  EXPECT_GT(log->segment_count(), 3u);
  const size_t before = log->segment_count();
  log->drop_before(15);
  EXPECT_LT(log->segment_count(), before);
  EXPECT_TRUE(log->read(refs[29]).ok());  // what is kept still reads
  log.reset();
  log = open(1024);
  EXPECT_EQ(log->next_offset(), 30u);
  EXPECT_TRUE(found_.count(29));
  EXPECT_FALSE(found_.count(0));  // its segment is gone
}

TEST_F(SegmentLogTest, ATornTailIsCutOffAndTheNextAppendTakesItsPlace) {
  {
    auto log = open();
    append(*log, 0, 5);
  }
  const auto files = segment_files();
  ASSERT_EQ(files.size(), 1u);
  const auto size = std::filesystem::file_size(files[0]);
  std::filesystem::resize_file(files[0], size - 7);  // the last record, half written
  auto log = open();
  EXPECT_EQ(log->next_offset(), 4u);
  EXPECT_EQ(found_.size(), 4u);
  auto refs = append(*log, 4, 6);
  auto m = log->read(refs[5]);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->offset, 5u);
  log.reset();
  log = open();
  EXPECT_EQ(log->next_offset(), 6u);
}

TEST_F(SegmentLogTest, DamageBeforeTheLastSegmentsTailIsDataLoss) {
  {
    auto log = open(1024);
    append(*log, 0, 30, 200);
  }
  const auto files = segment_files();
  ASSERT_GT(files.size(), 2u);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');  // inside the first record of a sealed segment
  }
  auto log = SegmentLog::open(dir_.file("topic"), 1024, [](uint64_t, const MsgRef&) {});
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.code(), Errc::kDataLoss);
}

}  // namespace
}  // namespace backbone::embedded
