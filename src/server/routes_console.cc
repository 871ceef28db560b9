// GET /console (the operators' console, doc/console.md) and its files; GET /v1/whoami (whom a
// token speaks for, so that the console knows its environment and which controls to show);
// GET /v1/envs/{env}/stats (the counters and the ingest-to-merged histogram that the console
// turns into rates and latency charts).
#include "backbone/config.h"
#include "console/assets.h"
#include "server/http.h"

namespace backbone::server {
namespace {

void send_asset(http::HttpResponse& res, const console::Asset& a) {
  res.status = 200;
  for (const auto& [name, value] : console::security_headers()) {
    res.headers.emplace_back(std::string(name), std::string(value));
  }
  res.set_content(std::string(a.body), std::string(a.content_type));
}

}  // namespace

void add_console_routes(http::Router& s, App& app) {
  auto index = [](const http::HttpRequest&, http::HttpResponse& res) {
    send_asset(res, *console::find_asset("index.html"));
  };
  s.get("/console/?", index, http::Router::Run::kInline);
  s.get(R"(/console/([A-Za-z0-9_.-]+))",
        [](const http::HttpRequest& req, http::HttpResponse& res) {
          auto a = console::find_asset(req.matches[1]);
          if (!a) {
            return send_error(res, make_error(Errc::kNotFound, "the console has no file \"" +
                                                                   req.matches[1] + "\""));
          }
          send_asset(res, *a);
        },
        http::Router::Run::kInline);

  s.get("/v1/whoami", [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    auto who = app.tokens().authenticate_bearer(req.header("Authorization"));
    if (!who.ok()) return send_error(res, who.error());
    const auto& served = app.envs();
    send_json(res, 200,
              {{"name", who->name},
               {"token_id", who->id},
               {"env", who->env},
               {"permissions", who->permissions.names()},
               {"production", is_production_environment(who->env)},
               {"served", std::find(served.begin(), served.end(), who->env) != served.end()}});
  });

  s.get(R"(/v1/envs/([^/]+)/stats)", [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    const std::string env = req.matches[1];
    auto p = authorize(app, req, env, auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    const Metrics& m = app.metrics();
    auto total = [&](const char* name) {
      double sum = 0;
      for (const auto& [labels, v] : m.values(name, {{"env", env}})) sum += v;
      return sum;
    };
    nlohmann::json merged = nlohmann::json::object();
    for (const auto& [labels, v] : m.values("backbone_merged_events_total", {{"env", env}})) {
      auto kind = labels.find("kind");
      merged[kind == labels.end() ? "" : kind->second] = v;
    }
    nlohmann::json latency = {{"count", 0},
                              {"sum_seconds", 0},
                              {"bounds", nlohmann::json::array()},
                              {"cumulative", nlohmann::json::array()}};
    if (const Histogram* h =
            m.find_histogram("backbone_ingest_to_merged_seconds", {{"env", env}})) {
      latency = {{"count", h->count()},
                 {"sum_seconds", h->sum()},
                 {"bounds", h->bounds()},
                 {"cumulative", h->buckets()}};
    }
    send_json(res, 200,
              {{"env", env},
               {"at", app.clock().now().to_rfc3339()},
               {"ingested", total("backbone_ingested_events_total")},
               {"duplicates", total("backbone_duplicate_events_total")},
               {"merged", merged},
               {"merged_total", total("backbone_merged_events_total")},
               {"dead_lettered", total("backbone_dead_lettered_events_total")},
               {"audit_mismatches", total("backbone_audit_projection_mismatches_total")},
               {"ingest_to_merged", latency}});
  });
}

}  // namespace backbone::server
