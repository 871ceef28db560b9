#include "server/http_server.h"

#include <sys/socket.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "server/http.h"

namespace backbone::server {

HttpServer::HttpServer(App& app) : app_(app), server_(std::make_unique<httplib::Server>()) {
  httplib::Server& s = *server_;
  s.set_payload_max_length(app.config().max_body_bytes);
  // Answers go out at once (Nagle's algorithm with delayed ACKs holds small writes ~40 ms).
  s.set_tcp_nodelay(true);
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second `serve` on
  // the same port would bind too and silently take half the connections.
  s.set_socket_options([this](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = sock;
  });
  add_event_routes(s, app);
  add_record_routes(s, app);
  add_admin_routes(s, app);
  add_subscription_routes(s, app);
  add_health_routes(s, app);
  // Errors that no route wrote (unknown path, body too large, bad request line) get the same
  // JSON body as the rest.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    Errc code = Errc::kInternal;
    std::string message = "error";
    switch (res.status) {
      case 400:
        code = Errc::kInvalidArgument;
        message = "malformed request";
        break;
      case 404:
        code = Errc::kNotFound;
        message = "no route for " + req.method + " " + req.path;
        break;
      case 405:
        code = Errc::kNotFound;
        message = "method not allowed";
        break;
      case 413:
        code = Errc::kTooLarge;
        message = "the body is larger than the limit of this server";
        break;
      case 415:
        code = Errc::kUnsupportedMedia;
        message = "unsupported media type";
        break;
      default:
        break;
    }
    const int status = res.status;
    send_error(res, make_error(code, message));
    res.status = status;
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unexpected failure";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, make_error(Errc::kInternal, what));
      });
  s.set_logger([&app](const httplib::Request& req, const httplib::Response& res) {
    app.metrics()
        .counter("backbone_http_requests_total", "HTTP requests by method and status",
                 {{"method", req.method}, {"status", std::to_string(res.status)}})
        .inc();
  });
}

HttpServer::~HttpServer() = default;

Result<void> HttpServer::bind(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return make_error(Errc::kInvalidArgument, "want host:port, got \"" + listen + "\"", "listen");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return make_error(Errc::kInvalidArgument, "bad port in \"" + listen + "\"", "listen");
  }
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
    if (port_ <= 0) return make_error(Errc::kUnavailable, "cannot listen on " + host);
  } else {
    if (!server_->bind_to_port(host, port)) {
      return make_error(Errc::kUnavailable, "cannot listen on " + listen + " (in use?)");
    }
    port_ = port;
  }
  // cpp-httplib listens with a backlog of 5 (compiled into Debian's library): a burst of new
  // connections then loses SYNs, and each lost one costs its client a 1 s retransmission.
  // Listening again on the bound socket raises the backlog.
  if (listen_fd_ >= 0 && ::listen(listen_fd_, SOMAXCONN) != 0) {
    return make_error(Errc::kUnavailable,
                      "cannot listen on " + listen + ": " + std::strerror(errno));
  }
  return {};
}

void HttpServer::run() {
  run_called_ = true;
  if (!stop_requested_) server_->listen_after_bind();
  run_returned_ = true;
}

void HttpServer::stop() {
  // cpp-httplib's stop() does nothing until the server loop has started, and a loop that
  // starts after it would then never end. So: a run() that has not begun returns at once, and
  // one that has is waited for until its loop is up (or it returned), then stopped.
  stop_requested_ = true;
  if (!run_called_) return;
  while (!server_->is_running() && !run_returned_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
}

}  // namespace backbone::server
