// HttpServer: the HTTP/JSON API of SPEC §6 on an App: its routes (a Router) served by an
// HttpListener (event-driven I/O, deadlines and connection caps: http/http_listener.h), with
// the limits of the config's [http] table.
//
// Thread-safety: bind, then run on one thread; stop from any thread.
#pragma once

#include <memory>
#include <string>

#include "backbone/result.h"
#include "http/http_listener.h"
#include "http/router.h"
#include "server/app.h"

namespace backbone::server {

class HttpServer {
 public:
  explicit HttpServer(App& app);
  ~HttpServer();
  // Binds "host:port" (port 0 picks a free one).
  Result<void> bind(const std::string& listen);
  int port() const { return listener_->port(); }
  // Serves until stop(); requests in progress finish first. stop() may come before, during or
  // after run(), from another thread.
  void run();
  void stop();
  http::HttpListener::Counters counters() const { return listener_->counters(); }
  // Reads the TLS certificate and key again (SIGHUP); see HttpListener::reload_tls.
  Result<void> reload_tls() { return listener_->reload_tls(); }
  bool tls() const { return listener_->tls(); }
  // The API's routes (the benchmark serves them through another server too).
  const http::Router& router() const { return router_; }

 private:
  App& app_;
  http::Router router_;
  std::unique_ptr<http::HttpListener> listener_;
};

// The listener's limits from the config.
http::ListenerOptions listener_options(const Config& config);

}  // namespace backbone::server
