// TopicIndex: the in-memory index of one topic's durable messages, by offset. Message bodies
// stay on disk (segment_log.h); an entry is 32 bytes, so a backlog of a million messages costs
// about 32 MB.
//
// Thread-safety: none; the broker's mutex guards it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>

#include "backbone/result.h"
#include "backbone/timestamp.h"

namespace backbone::delivery {

struct MsgRef {
  uint64_t key_hash = 0;  // 0: no ordering key
  int64_t publish_time_us = 0;
  uint32_t segment = 0;   // which segment file
  uint32_t length = 0;    // the record's length on disk
  uint64_t position = 0;  // the record's byte position in the segment
};

class TopicIndex {
 public:
  explicit TopicIndex(uint64_t base = 0) : base_(base) {}
  uint64_t begin() const { return base_; }
  uint64_t end() const { return base_ + refs_.size(); }
  // REQUIRES: begin() <= offset < end().
  const MsgRef& at(uint64_t offset) const {
    BACKBONE_ASSERT(offset >= base_ && offset < end());
    return refs_[offset - base_];
  }
  void push_back(const MsgRef& ref) { refs_.push_back(ref); }
  // The first offset held whose message was published at or after `us` (end() if none).
  // Publish times grow with offsets (a topic's appends take them from one clock, in order).
  uint64_t first_published_at_or_after(int64_t us) const {
    auto it = std::partition_point(refs_.begin(), refs_.end(),
                                   [&](const MsgRef& r) { return r.publish_time_us < us; });
    return base_ + static_cast<uint64_t>(it - refs_.begin());
  }
  // Forgets every offset below `offset` (they are acked by every subscription).
  void drop_before(uint64_t offset) {
    while (base_ < offset && !refs_.empty()) {
      refs_.pop_front();
      ++base_;
    }
    if (refs_.empty() && base_ < offset) base_ = offset;
  }

 private:
  uint64_t base_;
  std::deque<MsgRef> refs_;
};

}  // namespace backbone::delivery
