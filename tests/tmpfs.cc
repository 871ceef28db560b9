#include "tmpfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace backbone::testing {

Tmpfs::Tmpfs(uint64_t bytes) {
  const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
  if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    why_not_ = "cannot mount a tmpfs on " + dir_.path() + " (" + std::strerror(errno) +
               "); a full disk is tested as root";
    return;
  }
  mounted_ = true;
}

Tmpfs::~Tmpfs() {
  if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
}

uint64_t Tmpfs::free_bytes() const {
  struct statvfs st {};
  if (::statvfs(dir_.path().c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

bool Tmpfs::fill(uint64_t leave) {
  const std::string path = file("filler");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const std::vector<char> block(4096, 'f');
  bool ok = true;
  while (ok && free_bytes() > leave) {
    const size_t n = std::min<uint64_t>(block.size(), free_bytes() - leave);
    ok = ::write(fd, block.data(), n) == static_cast<ssize_t>(n);
  }
  ::close(fd);
  return ok && free_bytes() <= leave;
}

void Tmpfs::free_filler() { ::unlink(file("filler").c_str()); }

}  // namespace backbone::testing
