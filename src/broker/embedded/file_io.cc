#include "broker/embedded/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace backbone::embedded {

Error io_error(const std::string& what, const std::string& path) {
  const int err = errno;
  const bool full = err == ENOSPC || err == EDQUOT;
  return make_error(Errc::kUnavailable, std::string(full ? "the disk is full: " : "") + what + " " +
                                            path + ": " + std::strerror(err));
}

Result<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", path);
  std::string data;
  struct stat st {};
  ::fstat(fd, &st);
  data.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = io_error("cannot read", path);
      ::close(fd);
      return e;
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  return data;
}

Result<void> write_at(int fd, const std::string& bytes, off_t position, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done, position + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", path);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

void sync_dir(const std::string& dir) {
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Result<void> replace_file(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create", tmp);
  auto written = write_at(fd, contents, 0, tmp);
  if (written.ok() && ::fsync(fd) != 0) written = io_error("cannot sync", tmp);
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    written = io_error("cannot rename", tmp);
  }
  ::close(fd);
  if (!written.ok()) {
    ::unlink(tmp.c_str());  // what reached it would hold the space of a full disk
    return written;
  }
  sync_dir(std::filesystem::path(path).parent_path().string());
  return {};
}

}  // namespace backbone::embedded
