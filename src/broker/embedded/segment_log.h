// SegmentLog: one topic's messages on disk, as numbered segment files of framed records
// (doc/broker_log_format.md). Appends are buffered by the caller's thread and written and
// fsync'd by the broker's flusher (group commit); reads use pread on the kept-open files.
//
// Every write goes to a known position, so a batch that failed (a full disk) is written again
// as it was, over whatever part of it reached the file; a new segment file is created by the
// write that first needs it. Appending in memory so never fails.
//
// Thread-safety: append, take_pending, read and drop_before run under the broker's mutex;
// write_pending runs on the flusher thread alone, without the mutex, on the pending writes it
// took.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backbone/broker.h"
#include "broker/delivery/stored_message.h"
#include "broker/delivery/topic_index.h"

namespace backbone::embedded {

using delivery::decode_message;
using delivery::encode_message;
using delivery::MsgRef;
using delivery::ordering_key_hash;
using delivery::StoredMessage;

class SegmentLog {
 public:
  struct Segment;
  struct PendingWrite {
    std::shared_ptr<Segment> segment;
    uint64_t position;
    std::string bytes;
  };
  struct Pending {
    std::vector<PendingWrite> writes;
    std::string dir_to_sync;  // set when a segment file was created
  };

  // Opens the topic folder `dir` (creating it), scans its segments in order and reports each
  // record's offset and ref. A torn tail of the last segment is cut off; damage anywhere else
  // is kDataLoss.
  static Result<std::unique_ptr<SegmentLog>> open(
      const std::string& dir, uint64_t segment_bytes,
      const std::function<void(uint64_t offset, const MsgRef& ref)>& on_record);
  ~SegmentLog();

  uint64_t next_offset() const { return next_offset_; }
  // Buffers the next record (m.offset must be next_offset()). Rolls to a new segment when the
  // active one is full.
  MsgRef append(const StoredMessage& m);
  // Moves the buffered writes out, for write_pending (after those already in `into`).
  void take_pending(Pending& into);
  // Creates the new segment files, writes and fdatasyncs (and syncs the folder of new files).
  // On failure it cuts each file back to where the batch began, and `pending` may be written
  // again as it is.
  static Result<void> write_pending(Pending& pending);

  Result<StoredMessage> read(const MsgRef& ref) const;
  // Deletes the sealed segments whose records are all below `offset`.
  void drop_before(uint64_t offset);
  // Deletes every file and the folder (the topic was deleted).
  void remove_all();
  size_t segment_count() const { return segments_.size(); }
  // The first offset it still holds (next_offset() when it holds none).
  uint64_t first_offset() const;

 private:
  SegmentLog(std::string dir, uint64_t segment_bytes)
      : dir_(std::move(dir)), segment_bytes_(segment_bytes) {}
  std::shared_ptr<Segment> new_segment(uint64_t base);

  std::string dir_;
  uint64_t segment_bytes_;
  uint64_t next_offset_ = 0;
  uint32_t next_segment_id_ = 0;
  std::map<uint32_t, std::shared_ptr<Segment>> segments_;  // by id, oldest first
  Pending pending_;
};

}  // namespace backbone::embedded
