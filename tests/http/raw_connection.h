// RawConnection: a TCP client socket for tests that speak HTTP byte by byte (slow clients,
// partial requests), from a chosen loopback source address (every 127.x.y.z is this machine's,
// so a test can be many client addresses). Waits are bounded polls, never sleeps.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>

namespace backbone::testing {

class RawConnection {
 public:
  RawConnection() = default;
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  RawConnection(RawConnection&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RawConnection& operator=(RawConnection&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~RawConnection() { close(); }

  // Connects to 127.0.0.1:port from `source` (any port); false on failure.
  bool connect(int port, const char* source = "127.0.0.1") {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &from.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) return false;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Waits up to `timeout_ms` for something to read; reads what is there. Returns the bytes, or
  // "" with `closed` set when the server closed (or reset) the connection.
  std::string receive(int timeout_ms, bool* closed = nullptr) {
    if (closed) *closed = false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return {};
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return {};
    }
    return std::string(buf, static_cast<size_t>(n));
  }
  // Reads until `needle` has arrived, the server closed, or `timeout_ms` passed.
  std::string receive_until(std::string_view needle, int timeout_ms, bool* closed = nullptr) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string got;
    bool c = false;
    while (got.find(needle) == std::string::npos && !c) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) break;
      got += receive(static_cast<int>(left), &c);
    }
    if (closed) *closed = c;
    return got;
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace backbone::testing
