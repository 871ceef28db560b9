#include "http/router.h"

#include <exception>

namespace backbone::http {

void Router::add(std::string method, const std::string& pattern, Handler h, Run run) {
  routes_.push_back({std::move(method), pattern, std::regex(pattern), std::move(h), run});
}

std::vector<Router::RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  for (const Route& r : routes_) out.push_back({r.method, r.text});
  return out;
}

Router::Match Router::find(HttpRequest& req) const {
  Match m;
  std::smatch sm;
  for (const Route& r : routes_) {
    if (!std::regex_match(req.path, sm, r.pattern)) continue;
    if (r.method != req.method) {
      if (m.allow.find(r.method) == std::string::npos) {
        m.allow += (m.allow.empty() ? "" : ", ") + r.method;
      }
      m.status = 405;
      continue;
    }
    req.matches.clear();
    for (const auto& g : sm) req.matches.push_back(g.str());
    m.handler = &r.handler;
    m.run = r.run;
    m.status = 200;
    m.allow.clear();
    return m;
  }
  return m;
}

void Router::handle(const Match& m, HttpRequest& req, HttpResponse& res) const {
  if (m.handler == nullptr) {
    if (m.status == 405) res.headers.emplace_back("Allow", m.allow);
    return fail(req, res, m.status);
  }
  try {
    (*m.handler)(req, res);
  } catch (const std::exception& e) {
    res = HttpResponse();
    res.status = 500;
    res.body = std::string("unexpected failure: ") + e.what();
  } catch (...) {
    res = HttpResponse();
    res.status = 500;
    res.body = "unexpected failure";
  }
  finish(req, res);
}

void Router::fail(const HttpRequest& req, HttpResponse& res, int status) const {
  res.status = status;
  res.body.clear();
  finish(req, res);
}

void Router::finish(const HttpRequest& req, HttpResponse& res) const {
  if (res.content_type.empty() && !res.on_stream && on_error_) {
    try {
      on_error_(req, res);
    } catch (...) {
      res.content_type = "text/plain";
    }
  }
  if (logger_) logger_(req, res);
}

}  // namespace backbone::http
