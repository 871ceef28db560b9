// HttpServer: the HTTP/JSON API of SPEC §6 on an App (cpp-httplib, a thread pool).
//
// Thread-safety: bind, then run on one thread; stop from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "backbone/result.h"
#include "server/app.h"

namespace httplib {
class Server;
}

namespace backbone::server {

class HttpServer {
 public:
  explicit HttpServer(App& app);
  ~HttpServer();
  // Binds "host:port" (port 0 picks a free one).
  Result<void> bind(const std::string& listen);
  int port() const { return port_; }
  // Serves until stop(); requests in progress finish first. stop() may come before, during or
  // after run(), from another thread.
  void run();
  void stop();

 private:
  App& app_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<bool> run_called_{false}, run_returned_{false}, stop_requested_{false};
  int listen_fd_ = -1;  // the listening socket, once bound
};

}  // namespace backbone::server
