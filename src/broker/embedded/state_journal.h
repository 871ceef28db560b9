// StateJournal: the subscriptions' delivery state on disk, as one append-only file of framed
// records (doc/broker_log_format.md): each delivery attempt with its count and earliest
// redelivery, each ack, each dead-letter. A checkpoint rewrites the file as the current state
// (a base record per subscription plus its outstanding records) and renames it into place, so
// the journal stays about as large as the state it describes.
//
// Thread-safety: append and take_pending run under the broker's mutex; write and rewrite run on
// the flusher thread alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "backbone/result.h"
#include "backbone/timestamp.h"
#include "broker/delivery/journal_record.h"

namespace backbone::embedded {

using delivery::JournalRecord;

class StateJournal {
 public:
  // Opens (creating) the journal at `path` and replays it; a torn tail is cut off.
  static Result<std::unique_ptr<StateJournal>> open(
      const std::string& path, const std::function<void(const JournalRecord&)>& on_record);
  ~StateJournal();

  void append(const JournalRecord& r) { encode_journal_record(r, pending_); }
  // Records already framed (delivery::encode_snapshot).
  void append_framed(std::string_view framed) { pending_.append(framed); }
  bool has_pending() const { return !pending_.empty(); }
  void take_pending(std::string& into) {
    into.append(pending_);
    pending_.clear();
  }
  // Writes `bytes` after what is durable and fdatasyncs. On failure (a full disk) the file is cut
  // back to what was durable, and the same bytes may be written again.
  Result<void> write(const std::string& bytes);
  // Replaces the whole journal with `contents` (framed records), durably; on failure the
  // journal is unchanged.
  Result<void> rewrite(const std::string& contents);
  uint64_t size() const { return size_; }

 private:
  explicit StateJournal(std::string path) : path_(std::move(path)) {}
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string pending_;
};

}  // namespace backbone::embedded
