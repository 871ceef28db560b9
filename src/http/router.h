// Router: maps a request's method and decoded path to a handler, by regular expressions over the
// whole path (their groups become HttpRequest::matches). A path that some route matches under
// another method is answered 405 with Allow; one that none matches, 404.
//
// A route is either blocking (the default: it may wait for a store, a broker or a timeout, and
// runs on one of the server's worker threads) or inline (it answers at once from memory, on the
// I/O thread, so that it answers even while every worker is busy: /healthz).
//
// Thread-safety: add routes before the server starts; route() is then const and thread-safe.
#pragma once

#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "http/http_message.h"

namespace backbone::http {

using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

class Router {
 public:
  enum class Run { kOnWorker, kInline };

  void get(const std::string& pattern, Handler h, Run run = Run::kOnWorker) {
    add("GET", pattern, std::move(h), run);
  }
  void post(const std::string& pattern, Handler h, Run run = Run::kOnWorker) {
    add("POST", pattern, std::move(h), run);
  }
  void add(std::string method, const std::string& pattern, Handler h, Run run);

  // Called for every answer that no handler wrote a body for (404, 405, 413, a malformed
  // request...), to give it the API's error body.
  void set_error_handler(std::function<void(const HttpRequest&, HttpResponse&)> h) {
    on_error_ = std::move(h);
  }
  // Called with every request and its answer once it is computed.
  void set_logger(std::function<void(const HttpRequest&, const HttpResponse&)> h) {
    logger_ = std::move(h);
  }

  // What a request finds: its handler (matches filled in), or none (`status` 404 or 405).
  struct Match {
    const Handler* handler = nullptr;
    Run run = Run::kOnWorker;
    int status = 404;
    std::string allow;  // the methods that would match, for a 405
  };
  Match find(HttpRequest& req) const;

  // The routes as added: method and pattern (for the OpenAPI check).
  struct RouteInfo {
    std::string method;
    std::string pattern;
  };
  std::vector<RouteInfo> routes() const;

  // Runs the handler that `m` found, or answers its status; then the error handler and the
  // logger. Exceptions of a handler are answered 500 (they never reach the server).
  void handle(const Match& m, HttpRequest& req, HttpResponse& res) const;
  // Answers a request that never reached a route (a malformed one, a too large body).
  void fail(const HttpRequest& req, HttpResponse& res, int status) const;

 private:
  struct Route {
    std::string method;
    std::string text;
    std::regex pattern;
    Handler handler;
    Run run;
  };
  void finish(const HttpRequest& req, HttpResponse& res) const;
  std::vector<Route> routes_;
  std::function<void(const HttpRequest&, HttpResponse&)> on_error_;
  std::function<void(const HttpRequest&, const HttpResponse&)> logger_;
};

}  // namespace backbone::http
