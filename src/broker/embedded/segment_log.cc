#include "broker/embedded/segment_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "broker/delivery/codec.h"
#include "broker/embedded/file_io.h"

namespace backbone::embedded {

using delivery::append_frame;
using delivery::kFrameHeader;
using delivery::read_frame;

struct SegmentLog::Segment {
  uint32_t id = 0;
  uint64_t base = 0;         // the first offset it holds
  uint64_t last_offset = 0;  // the last offset appended (valid when size > 0)
  uint64_t size = 0;         // bytes, pending writes included
  int fd = -1;
  std::string path;
  ~Segment() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

std::string segment_name(uint64_t base) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu.seg", static_cast<unsigned long long>(base));
  return buf;
}

}  // namespace

Result<std::unique_ptr<SegmentLog>> SegmentLog::open(
    const std::string& dir, uint64_t segment_bytes,
    const std::function<void(uint64_t, const MsgRef&)>& on_record) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Errc::kUnavailable, "cannot create " + dir + ": " + ec.message());
  std::unique_ptr<SegmentLog> log(new SegmentLog(dir, segment_bytes));
  std::vector<std::pair<uint64_t, std::string>> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 24 && name.ends_with(".seg")) {
      files.emplace_back(std::stoull(name.substr(0, 20)), entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [base, path] = files[i];
    const bool last = i + 1 == files.size();
    auto data = read_file(path);
    if (!data.ok()) return data.error();
    auto seg = std::make_shared<Segment>();
    seg->id = log->next_segment_id_++;
    seg->base = base;
    seg->path = path;
    if (i > 0 && base > log->next_offset_) {
      // The previous segment lost its unsynced tail, and this one (made when that one filled
      // up) starts after the gap. A batch is acknowledged only once all of it is synced, and
      // batches are synced in order, so nothing from here on was acknowledged: drop it.
      for (size_t j = i; j < files.size(); ++j) ::unlink(files[j].second.c_str());
      break;
    }
    if (i > 0 && base < log->next_offset_) {
      return make_error(Errc::kDataLoss, "segment " + path + " overlaps its predecessor");
    }
    log->next_offset_ = base;
    size_t pos = 0;
    while (pos < data->size()) {
      auto frame = read_frame(*data, pos);
      StoredMessage m;
      if (!frame || !decode_message(frame->payload, m) || m.offset != log->next_offset_) {
        if (!last) {
          return make_error(Errc::kDataLoss,
                            "segment " + path + " is damaged at byte " + std::to_string(pos));
        }
        break;  // a torn tail: the crash cut the last write short
      }
      MsgRef ref;
      ref.key_hash = ordering_key_hash(m.ordering_key);
      ref.publish_time_us = m.publish_time_us;
      ref.segment = seg->id;
      ref.position = pos;
      ref.length = static_cast<uint32_t>(frame->size);
      on_record(m.offset, ref);
      seg->last_offset = m.offset;
      log->next_offset_ = m.offset + 1;
      pos += frame->size;
    }
    seg->fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (seg->fd < 0) return io_error("cannot open", path);
    if (pos < data->size()) {
      if (::ftruncate(seg->fd, static_cast<off_t>(pos)) != 0 || ::fsync(seg->fd) != 0) {
        return io_error("cannot cut the torn tail of", path);
      }
    }
    seg->size = pos;
    log->segments_.emplace(seg->id, std::move(seg));
  }
  return log;
}

SegmentLog::~SegmentLog() = default;

std::shared_ptr<SegmentLog::Segment> SegmentLog::new_segment(uint64_t base) {
  auto seg = std::make_shared<Segment>();
  seg->id = next_segment_id_++;
  seg->base = base;
  seg->path = dir_ + "/" + segment_name(base);
  pending_.dir_to_sync = dir_;  // the write that creates the file syncs the folder
  segments_.emplace(seg->id, seg);
  return seg;
}

MsgRef SegmentLog::append(const StoredMessage& m) {
  BACKBONE_ASSERT(m.offset == next_offset_);
  std::string payload;
  payload.reserve(m.data.size() + m.ordering_key.size() + 64);
  encode_message(m, payload);
  std::shared_ptr<Segment> seg = segments_.empty() ? nullptr : segments_.rbegin()->second;
  if (!seg || (seg->size > 0 && seg->size + payload.size() + kFrameHeader > segment_bytes_)) {
    seg = new_segment(m.offset);
  }
  MsgRef ref;
  ref.key_hash = ordering_key_hash(m.ordering_key);
  ref.publish_time_us = m.publish_time_us;
  ref.segment = seg->id;
  ref.position = seg->size;
  ref.length = static_cast<uint32_t>(payload.size() + kFrameHeader);
  if (pending_.writes.empty() || pending_.writes.back().segment != seg) {
    pending_.writes.push_back({seg, seg->size, {}});
  }
  append_frame(pending_.writes.back().bytes, payload);
  seg->size += ref.length;
  seg->last_offset = m.offset;
  ++next_offset_;
  return ref;
}

void SegmentLog::take_pending(Pending& into) {
  for (auto& w : pending_.writes) into.writes.push_back(std::move(w));
  if (!pending_.dir_to_sync.empty()) into.dir_to_sync = pending_.dir_to_sync;
  pending_ = Pending();
}

Result<void> SegmentLog::write_pending(Pending& pending) {
  auto written = [&]() -> Result<void> {
    for (auto& w : pending.writes) {
      // Only the flusher opens a segment's file, and reads reach a segment only once a write to
      // it was durable.
      if (w.segment->fd < 0) {
        w.segment->fd = ::open(w.segment->path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (w.segment->fd < 0) return io_error("cannot create", w.segment->path);
      }
      BACKBONE_TRY(write_at(w.segment->fd, w.bytes, w.position, w.segment->path));
    }
    std::vector<Segment*> synced;
    for (auto& w : pending.writes) {
      if (std::find(synced.begin(), synced.end(), w.segment.get()) != synced.end()) continue;
      if (::fdatasync(w.segment->fd) != 0) return io_error("cannot sync", w.segment->path);
      synced.push_back(w.segment.get());
    }
    if (!pending.dir_to_sync.empty()) sync_dir(pending.dir_to_sync);
    return {};
  }();
  if (!written.ok()) {
    // Leave no part of the batch behind: a restart must not find records whose publish failed.
    // The first write to a segment in the batch is its lowest position.
    std::vector<Segment*> cut;
    for (auto& w : pending.writes) {
      if (w.segment->fd < 0 || std::find(cut.begin(), cut.end(), w.segment.get()) != cut.end()) {
        continue;
      }
      (void)::ftruncate(w.segment->fd, static_cast<off_t>(w.position));
      cut.push_back(w.segment.get());
    }
  }
  return written;
}

Result<StoredMessage> SegmentLog::read(const MsgRef& ref) const {
  auto it = segments_.find(ref.segment);
  if (it == segments_.end()) {
    return make_error(Errc::kInternal, "segment " + std::to_string(ref.segment) + " is gone");
  }
  std::string buf(ref.length, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::pread(it->second->fd, buf.data() + got, buf.size() - got,
                              static_cast<off_t>(ref.position + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return io_error("cannot read", it->second->path);
    got += static_cast<size_t>(n);
  }
  auto frame = read_frame(buf, 0);
  StoredMessage m;
  if (!frame || !decode_message(frame->payload, m)) {
    return make_error(Errc::kDataLoss, "damaged record in " + it->second->path + " at byte " +
                                           std::to_string(ref.position));
  }
  return m;
}

void SegmentLog::drop_before(uint64_t offset) {
  // Never the active (last) segment: it tells the next offset after a restart.
  while (segments_.size() > 1) {
    auto first = segments_.begin();
    const Segment& s = *first->second;
    if (s.size > 0 && s.last_offset >= offset) break;
    ::unlink(s.path.c_str());
    segments_.erase(first);
  }
}

uint64_t SegmentLog::first_offset() const {
  for (const auto& [id, s] : segments_) {
    if (s->size > 0) return s->base;
  }
  return next_offset_;
}

void SegmentLog::remove_all() {
  for (auto& [id, s] : segments_) ::unlink(s->path.c_str());
  segments_.clear();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace backbone::embedded
