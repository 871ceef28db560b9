// Recovery of the embedded broker's files from damaged bytes: the input is written as a topic's
// first segment file and, separately, as the subscriptions' journal, and each is opened as
// after a crash. Either opens (a torn tail cut off) or fails with a clear error; what a segment
// yields reads back; the records a journal yields fold without fault.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "broker/delivery/journal_record.h"
#include "broker/embedded/segment_log.h"
#include "broker/embedded/state_journal.h"
#include "fuzz/fuzz_target.h"

namespace {

// One folder per process, emptied for each input.
const std::string& scratch() {
  static const std::string dir = [] {
    std::string d = (std::filesystem::temp_directory_path() / "backbone-fuzz-XXXXXX").string();
    if (::mkdtemp(d.data()) == nullptr) std::abort();
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace backbone;
  const std::string& dir = scratch();
  std::filesystem::remove_all(dir + "/topic");
  std::filesystem::create_directories(dir + "/topic");
  const std::string_view in = fuzz::text(data, size);
  std::ofstream(dir + "/topic/00000000000000000000.seg", std::ios::binary) << in;
  std::vector<delivery::MsgRef> refs;
  auto log = embedded::SegmentLog::open(
      dir + "/topic", 1 << 20, [&](uint64_t, const delivery::MsgRef& ref) { refs.push_back(ref); });
  if (log.ok()) {
    for (const auto& ref : refs) {
      auto m = (*log)->read(ref);
      BACKBONE_FUZZ_CHECK(m.ok());
    }
  } else {
    BACKBONE_FUZZ_CHECK(!log.error().message.empty());
  }
  std::filesystem::remove(dir + "/journal");
  std::ofstream(dir + "/journal", std::ios::binary) << in;
  delivery::JournalFold fold;
  auto journal = embedded::StateJournal::open(
      dir + "/journal", [&](const delivery::JournalRecord& r) { fold.apply(r); });
  if (!journal.ok()) BACKBONE_FUZZ_CHECK(!journal.error().message.empty());
  return 0;
}
