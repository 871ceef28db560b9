#include "server/http_server.h"

#include <chrono>

#include "backbone/log.h"

#include "server/http.h"

namespace backbone::server {

http::ListenerOptions listener_options(const Config& c) {
  http::ListenerOptions o;
  o.max_body_bytes = c.max_body_bytes;
  o.header_timeout_ms = c.http.header_timeout_ms;
  o.body_timeout_ms = c.http.body_timeout_ms;
  o.write_timeout_ms = c.http.body_timeout_ms;
  o.idle_timeout_ms = c.http.idle_timeout_ms;
  o.max_connections = c.http.max_connections;
  o.max_connections_per_address = c.http.max_connections_per_address;
  o.workers = c.http.workers;
  o.tls_cert_file = c.tls_cert_file;
  o.tls_key_file = c.tls_key_file;
  return o;
}

HttpServer::HttpServer(App& app) : app_(app) {
  http::Router& s = router_;
  add_event_routes(s, app);
  add_record_routes(s, app);
  add_admin_routes(s, app);
  add_dlq_routes(s, app);
  add_subscription_routes(s, app);
  add_health_routes(s, app);
  add_console_routes(s, app);
  add_audit_routes(s, app);
  // Answers that no route wrote a body for (unknown path, body too large, a malformed request,
  // a handler that threw) get the same JSON body as the rest.
  s.set_error_handler([](const http::HttpRequest& req, http::HttpResponse& res) {
    Errc code = Errc::kInternal;
    std::string message = res.body.empty() ? "error" : res.body;
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
        message = req.method + " is not allowed on " + req.path;
        break;
      case 413:
        code = Errc::kTooLarge;
        message = "the body is larger than the limit of this server";
        break;
      case 431:
        code = Errc::kTooLarge;
        message = "the request's headers are larger than the limit of this server";
        break;
      default:
        break;
    }
    const int status = res.status;
    send_error(res, make_error(code, message));
    res.status = status;
  });
  // The access log (info) and the request counter. The duration runs from the request's headers
  // to its answer's (a stream's first) bytes being ready; the query is left out of the line.
  s.set_logger([&app](const http::HttpRequest& req, const http::HttpResponse& res) {
    const std::string method = req.method.empty() ? "-" : req.method;
    app.metrics()
        .counter("backbone_http_requests_total", "HTTP requests by method and status",
                 {{"method", method}, {"status", std::to_string(res.status)}})
        .inc();
    if (!log::enabled(log::Level::kInfo)) return;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - req.received)
            .count();
    log::info("http.request", {{"method", method},
                               {"path", req.path.empty() ? "-" : req.path},
                               {"status", res.status},
                               {"ms", ms},
                               {"bytes", static_cast<uint64_t>(res.body.size())},
                               {"remote", req.remote_address}});
  });
  listener_ = std::make_unique<http::HttpListener>(router_, listener_options(app.config()));
}

HttpServer::~HttpServer() = default;

Result<void> HttpServer::bind(const std::string& listen) { return listener_->bind(listen); }

void HttpServer::run() { listener_->run(); }

void HttpServer::stop() { listener_->stop(); }

}  // namespace backbone::server
