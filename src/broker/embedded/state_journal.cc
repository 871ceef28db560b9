#include "broker/embedded/state_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "broker/delivery/codec.h"
#include "broker/embedded/file_io.h"

namespace backbone::embedded {

Result<std::unique_ptr<StateJournal>> StateJournal::open(
    const std::string& path, const std::function<void(const JournalRecord&)>& on_record) {
  std::unique_ptr<StateJournal> j(new StateJournal(path));
  j->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (j->fd_ < 0) return io_error("cannot open", path);
  auto data = read_file(path);
  if (!data.ok()) return data.error();
  size_t pos = 0;
  while (pos < data->size()) {
    auto frame = delivery::read_frame(*data, pos);
    JournalRecord r;
    if (!frame || !delivery::decode_journal_record(frame->payload, r)) break;  // a torn tail
    on_record(r);
    pos += frame->size;
  }
  if (pos < data->size()) {
    if (::ftruncate(j->fd_, static_cast<off_t>(pos)) != 0 || ::fsync(j->fd_) != 0) {
      return io_error("cannot cut the torn tail of", path);
    }
  }
  j->size_ = pos;
  return j;
}

StateJournal::~StateJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> StateJournal::write(const std::string& bytes) {
  if (bytes.empty()) return {};
  // At the end of what is durable, not O_APPEND: a write cut short by a full disk is written
  // again over its own remains, never after them.
  auto w = write_at(fd_, bytes, static_cast<off_t>(size_), path_);
  if (w.ok() && ::fdatasync(fd_) != 0) w = io_error("cannot sync", path_);
  if (!w.ok()) {
    (void)::ftruncate(fd_, static_cast<off_t>(size_));
    return w;
  }
  size_ += bytes.size();
  return {};
}

Result<void> StateJournal::rewrite(const std::string& contents) {
  BACKBONE_TRY(replace_file(path_, contents));
  const int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", path_);
  ::close(fd_);
  fd_ = fd;
  size_ = contents.size();
  return {};
}

}  // namespace backbone::embedded
