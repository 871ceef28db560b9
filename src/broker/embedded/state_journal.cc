#include "broker/embedded/state_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "broker/delivery/codec.h"
#include "broker/embedded/io_error.h"

namespace backbone::embedded {
namespace {

Result<void> write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<StateJournal>> StateJournal::open(
    const std::string& path, const std::function<void(const JournalRecord&)>& on_record) {
  std::unique_ptr<StateJournal> j(new StateJournal(path));
  j->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (j->fd_ < 0) return io_error("cannot open", path);
  struct stat st {};
  ::fstat(j->fd_, &st);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n =
        ::pread(j->fd_, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n <= 0) return io_error("cannot read", path);
    got += static_cast<size_t>(n);
  }
  size_t pos = 0;
  while (pos < data.size()) {
    auto frame = delivery::read_frame(data, pos);
    JournalRecord r;
    if (!frame || !delivery::decode_journal_record(frame->payload, r)) break;  // a torn tail
    on_record(r);
    pos += frame->size;
  }
  if (pos < data.size()) {
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
  BACKBONE_TRY(write_all(fd_, bytes, path_));
  if (::fdatasync(fd_) != 0) return io_error("cannot sync", path_);
  size_ += bytes.size();
  return {};
}

Result<void> StateJournal::rewrite(const std::string& contents) {
  const std::string tmp = path_ + ".new";
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create", tmp);
  if (auto w = write_all(fd, contents, tmp); !w.ok()) {
    ::close(fd);
    return w;
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return io_error("cannot sync", tmp);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::close(fd);
    return io_error("cannot rename", tmp);
  }
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  ::close(fd_);
  fd_ = fd;
  size_ = contents.size();
  return {};
}

}  // namespace backbone::embedded
