#include "serve_process.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace backbone::testing {

using namespace std::chrono_literals;

void ServeProcess::start() {
  pid_ = ::fork();
  if (pid_ == 0) {
    const std::string listen = host_ + ":" + std::to_string(port_);
    if (!::freopen("/dev/null", "w", stdout)) ::_exit(126);
    if (!log_path_.empty() && !::freopen(log_path_.c_str(), "a", stderr)) ::_exit(126);
    std::vector<const char*> argv = {BACKBONE_CLI_PATH, "--config", config_.c_str()};
    if (!env_.empty()) argv.insert(argv.end(), {"--env", env_.c_str()});
    argv.insert(argv.end(), {"serve", "--listen", listen.c_str()});
    if (log_path_.empty()) argv.push_back("-q");
    for (const auto& a : log_flags_) argv.push_back(a.c_str());
    for (const auto& a : extra_) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    ::execv(BACKBONE_CLI_PATH, const_cast<char* const*>(argv.data()));
    ::_exit(127);
  }
}

bool ServeProcess::wait_ready() {
  std::unique_ptr<httplib::ClientImpl> c;
  if (ca_.empty()) {
    c = std::make_unique<httplib::ClientImpl>("127.0.0.1", port_);
  } else {
    auto tls = std::make_unique<httplib::SSLClient>("127.0.0.1", port_);
    tls->set_ca_cert_path(ca_.c_str());
    tls->enable_server_certificate_verification(true);
    c = std::move(tls);
  }
  c->set_connection_timeout(1);
  for (int i = 0; i < 400; ++i) {
    if (auto r = c->Get("/healthz"); r && r->status == 200) return true;
    // A child that exited (it could not listen, its config was refused) will not answer.
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exited_ = status;
      return false;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void ServeProcess::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ServeProcess::kill(int sig) {
  if (pid_ <= 0) return exited_.value_or(-1);
  ::kill(pid_, sig);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string write_serve_config(const std::string& folder, const std::string& pubsub_listen) {
  return write_serve_config(folder, "sqlite://" + folder + "/{env}.db",
                            "embedded://" + folder + "/broker", pubsub_listen);
}

std::string write_serve_config(const std::string& folder, const std::string& store,
                               const std::string& broker, const std::string& pubsub_listen) {
  const std::string path = folder + "/backbone.toml";
  std::ofstream(path) << "store = \"" << store << "\"\n"
                      << "broker = \"" << broker << "\"\n"
                      << "tokens = \"" << folder << "/tokens.json\"\n"
                      << "pubsub_listen = \"" << pubsub_listen << "\"\n";
  return path;
}

std::pair<int, std::string> run_cli(const std::string& args) {
  const std::string cmd = std::string(BACKBONE_CLI_PATH) + " " + args;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  if (!p) return {-1, out};
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool wait_for_port(int port, int ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (up) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::optional<std::vector<EventId>> post_events(int port, const std::string& token,
                                                const std::string& body) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2);
  c.set_read_timeout(10);
  auto r = c.Post("/v1/envs/sandbox/events", {{"Authorization", "Bearer " + token}}, body,
                  "application/json");
  if (!r || r->status != 201) return std::nullopt;
  auto answer = nlohmann::json::parse(r->body, nullptr, false);
  if (!answer.is_object() || !answer["events"].is_array()) return std::nullopt;
  std::vector<EventId> ids;
  for (const auto& e : answer["events"]) {
    auto id = EventId::parse(e.value("id", ""));
    if (!id.ok()) return std::nullopt;
    ids.push_back(*id);
  }
  return ids;
}

double counter_sum(int port, const std::string& name) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/metrics");
  if (!r || r->status != 200) return -1;
  std::istringstream in(r->body);
  double sum = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

}  // namespace backbone::testing
