#include "test_servers.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

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
