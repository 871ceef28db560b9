#include "test_servers.h"

#include "serve_process.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace backbone::testing {

std::string test_server_url(const std::string& kind) {
  const char* var = kind == "postgresql" ? "BACKBONE_TEST_POSTGRES_URL"
                    : kind == "mysql"    ? "BACKBONE_TEST_MYSQL_URL"
                                         : "BACKBONE_TEST_NATS_URL";
  const char* v = std::getenv(var);
  return v ? v : "";
}

bool test_servers_required() {
  const char* v = std::getenv("BACKBONE_TEST_SERVERS_REQUIRED");
  return v && *v && std::string(v) != "0";
}

uint16_t free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool google_emulator_installed() { return std::filesystem::exists(kGoogleEmulator); }

int google_emulator_port() {
  static const int port = [] {
    if (!google_emulator_installed()) return 0;
    const int p = free_loopback_port();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      if (!::freopen("/dev/null", "w", stdout)) ::_exit(126);
      ::dup2(::fileno(stdout), 2);
      const std::string flag = "--port=" + std::to_string(p);
      ::execl(kGoogleEmulator, kGoogleEmulator, "--host=127.0.0.1", flag.c_str(), nullptr);
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    static const pid_t group = pid;
    std::atexit([] {
      ::kill(-group, SIGKILL);
      ::waitpid(group, nullptr, 0);
    });
    // Up when it accepts connections (a JVM takes a few seconds).
    return wait_for_port(p, 60'000) ? p : 0;
  }();
  return port;
}

std::string run_test_script(const std::string& script, const std::string& args) {
  const std::string cmd = std::string(BACKBONE_SOURCE_DIR) + "/scripts/" + script + " " + args;
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "cannot run " << cmd;
    return out;
  }
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << cmd;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace backbone::testing
