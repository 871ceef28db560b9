// GET /v1/envs/{env}/topology, GET /v1/envs/{env}/cluster, GET|POST /v1/envs/{env}/tokens,
// POST /v1/envs/{env}/tokens/{id}:revoke, GET /v1/envs/{env}/admin-audit.
#include <limits>
#include <map>

#include "backbone/event_json.h"
#include "server/cluster_json.h"
#include "server/http.h"
#include "server/stats_json.h"
#include "server/token_json.h"

namespace backbone::server {

void add_admin_routes(http::Router& s, App& app) {
  s.get(R"(/v1/envs/([^/]+)/topology)",
        [&app](const http::HttpRequest& req, http::HttpResponse& res) {
          const std::string env = req.matches[1];
          auto p = authorize(app, req, env, auth::Permission::kRead);
          if (!p.ok()) return send_error(res, p.error());
          nlohmann::json topics = nlohmann::json::array(), subs = nlohmann::json::array();
          for (const auto& t : app.topology().topics(env)) topics.push_back({{"name", t.name}});
          for (const auto& c : app.topology().subscriptions(env)) {
            nlohmann::json j = {
                {"name", c.name},
                {"topic", c.topic},
                {"ordered", c.ordered},
                {"key_delivery", c.ordered ? nlohmann::json(key_delivery_name(c.key_delivery))
                                           : nlohmann::json(nullptr)},
                {"ack_deadline_seconds", static_cast<double>(c.ack_deadline_us) / kSecond}};
            j["backlog"] = backlog_json(app.broker().stats(c.name));
            subs.push_back(j);
          }
          send_json(res, 200, {{"env", env}, {"topics", topics}, {"subscriptions", subs}});
        });

  // The processes serving the environment and who owns which bucket, as this process last read
  // them from the store (doc/scale_out.md); ?since=V&wait_ms=M waits for a change.
  s.get(R"(/v1/envs/([^/]+)/cluster)",
        [&app](const http::HttpRequest& req, http::HttpResponse& res) {
          const std::string env = req.matches[1];
          auto p = authorize(app, req, env, auth::Permission::kRead);
          if (!p.ok()) return send_error(res, p.error());
          cluster::LeaseKeeper* keeper = app.lease_keeper(env);
          if (keeper == nullptr) {
            return send_json(res, 200,
                             {{"env", env},
                              {"buckets", 0},
                              {"note",
                               "no buckets: the broker shares its subscriptions among processes, "
                               "or the stages do not run here"}});
          }
          // ?since=V&wait_ms=M: answers once the view's version is above V (members or leases
          // changed), or after M ms (at most 30,000).
          auto since = query_int(req, "since", 0, 0, std::numeric_limits<int64_t>::max());
          if (!since.ok()) return send_error(res, since.error());
          auto wait_ms = query_int(req, "wait_ms", 0, 0, 30'000);
          if (!wait_ms.ok()) return send_error(res, wait_ms.error());
          const auto [view, version] = keeper->view(static_cast<uint64_t>(*since), *wait_ms * 1000);
          auto backlog = bucket_backlog((*p)->merge_store(), keeper->buckets());
          if (!backlog.ok()) return send_error(res, backlog.error());
          nlohmann::json out = cluster_json(view, *backlog, app.clock().now());
          out["env"] = env;
          out["version"] = version;
          out["member"] = keeper->member();
          out["buckets"] = keeper->buckets();  // also before the first heartbeat read the leases
          send_json(res, 200, out);
        });

  // The admin audit (doc/tokens.md): ?after=ID&limit=N (at most 1000, default 100).
  s.get(R"(/v1/envs/([^/]+)/admin-audit)", [&app](const http::HttpRequest& req,
                                                  http::HttpResponse& res) {
    const std::string env = req.matches[1];
    auto p = authorize(app, req, env, auth::Permission::kAdmin);
    if (!p.ok()) return send_error(res, p.error());
    std::optional<EventId> after;
    if (req.has_param("after")) {
      auto id = EventId::parse(req.param("after"));
      if (!id.ok()) {
        return send_error(res, make_error(Errc::kInvalidArgument, id.error().message, "after"));
      }
      after = *id;
    }
    auto limit = query_int(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return send_error(res, limit.error());
    auto acts = app.admin_actions(env, after, static_cast<size_t>(*limit));
    if (!acts.ok()) return send_error(res, acts.error());
    nlohmann::json out = nlohmann::json::array();
    for (const AdminAction& a : *acts) out.push_back(admin_action_json(a));
    send_json(res, 200, {{"env", env}, {"actions", out}});
  });

  // Tokens (doc/tokens.md): an admin's, for its own environment. A token may grant only what it
  // may do itself (so admin cannot make a pipeline token).
  s.get(R"(/v1/envs/([^/]+)/tokens)",
        [&app](const http::HttpRequest& req, http::HttpResponse& res) {
          const std::string env = req.matches[1];
          auto p = authorize(app, req, env, auth::Permission::kAdmin);
          if (!p.ok()) return send_error(res, p.error());
          auto all = (*p)->ingest_store().tokens();
          if (!all.ok()) return send_error(res, all.error());
          nlohmann::json out = nlohmann::json::array();
          for (const StoredToken& t : *all) out.push_back(token_json(t));
          send_json(res, 200, {{"env", env}, {"tokens", out}});
        });

  s.post(R"(/v1/envs/([^/]+)/tokens)", [&app](const http::HttpRequest& req,
                                              http::HttpResponse& res) {
    const std::string env = req.matches[1];
    auto p = authorize(app, req, env, auth::Permission::kAdmin);
    if (!p.ok()) return send_error(res, p.error());
    if (auto json = require_json(req); !json.ok()) return send_error(res, json.error());
    auto body = parse_body(req);
    if (!body.ok()) return send_error(res, body.error());
    if (!body->is_object()) {
      return send_error(res, make_error(Errc::kInvalidArgument, "the body must be a JSON object"));
    }
    std::string name = "api";
    if (body->contains("name")) {
      if (!(*body)["name"].is_string()) {
        return send_error(res, make_error(Errc::kInvalidArgument, "must be a string", "name"));
      }
      name = (*body)["name"].get<std::string>();
    }
    if (!body->contains("roles") || !(*body)["roles"].is_array()) {
      return send_error(
          res, make_error(Errc::kInvalidArgument, "must be an array of role names", "roles"));
    }
    std::vector<std::string> roles;
    for (const auto& r : (*body)["roles"]) {
      if (!r.is_string()) {
        return send_error(
            res, make_error(Errc::kInvalidArgument, "must be an array of role names", "roles"));
      }
      roles.push_back(r.get<std::string>());
    }
    auto ttl = body_int(*body, "ttl_seconds", 0, 1, 3'153'600'000);  // up to 100 years
    if (!ttl.ok()) return send_error(res, ttl.error());
    auto who = app.tokens().authenticate_bearer(req.header("Authorization"));
    if (!who.ok()) return send_error(res, who.error());
    auto granted = auth::parse_roles(roles);
    if (!granted.ok()) return send_error(res, granted.error());
    for (auth::Permission perm : auth::kPermissions) {
      if (granted->has(perm) && !who->may(perm)) {
        return send_error(
            res, make_error(Errc::kPermissionDenied,
                            std::string("this token may not grant ") + auth::permission_name(perm),
                            "roles"));
      }
    }
    auto made = app.create_stored_token(
        env, name, roles, *ttl > 0 ? std::optional<int64_t>(*ttl * kSecond) : std::nullopt,
        who->actor());
    if (!made.ok()) return send_error(res, made.error());
    nlohmann::json out = token_json(made->row);
    out["env"] = env;
    out["token"] = made->token;
    send_json(res, 201, out);
  });

  s.post(R"(/v1/envs/([^/]+)/tokens/([^/:]+):revoke)",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
           const std::string env = req.matches[1];
           auto p = authorize(app, req, env, auth::Permission::kAdmin);
           if (!p.ok()) return send_error(res, p.error());
           auto who = app.tokens().authenticate_bearer(req.header("Authorization"));
           if (!who.ok()) return send_error(res, who.error());
           auto revoked = app.revoke_token(env, req.matches[2], who->actor());
           if (!revoked.ok()) return send_error(res, revoked.error());
           nlohmann::json out = token_json(*revoked);
           out["env"] = env;
           out["revoked"] = !revoked->revoked_at.has_value();
           send_json(res, 200, out);
         });
}

}  // namespace backbone::server
