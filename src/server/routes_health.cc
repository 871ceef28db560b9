// GET /healthz (the process answers), GET /readyz (every served environment's store and the
// broker answer), GET /metrics (Prometheus text format), GET /v1/openapi.json (the API's
// OpenAPI 3.1 document, doc/openapi.json).
#include "backbone/openapi.h"
#include "server/http.h"

namespace backbone::server {

void add_health_routes(http::Router& s, App& app) {
  // Answered on the I/O thread: it answers while every worker waits on a store.
  s.get(
      "/healthz",
      [](const http::HttpRequest&, http::HttpResponse& res) {
        send_json(res, 200, {{"status", "ok"}});
      },
      http::Router::Run::kInline);
  s.get("/readyz", [&app](const http::HttpRequest&, http::HttpResponse& res) {
    nlohmann::json checks = nlohmann::json::object();
    bool ready = true;
    for (const auto& env : app.envs()) {
      auto p = app.pipeline(env);
      auto v = p.ok() ? (*p)->ingest_store().schema_version() : Result<int>(p.error());
      checks["store." + env] = v.ok() ? "ok" : v.error().message;
      ready = ready && v.ok();
    }
    auto topics = app.broker().list_topics();
    checks["broker"] = topics.ok() ? "ok" : topics.error().message;
    ready = ready && topics.ok();
    send_json(res, ready ? 200 : 503,
              {{"status", ready ? "ready" : "not ready"}, {"checks", checks}});
  });
  s.get(
      "/v1/openapi.json",
      [](const http::HttpRequest&, http::HttpResponse& res) {
        res.status = 200;
        res.set_content(std::string(openapi::kDocument), "application/json");
      },
      http::Router::Run::kInline);
  s.get("/metrics", [&app](const http::HttpRequest&, http::HttpResponse& res) {
    app.refresh_gauges();
    res.status = 200;
    res.set_content(app.metrics().render(), "text/plain; version=0.0.4");
  });
}

}  // namespace backbone::server
