// GET /v1/envs/{env}/topology, GET /v1/envs/{env}/cluster, GET /v1/envs/{env}/dlq,
// POST /v1/envs/{env}/dlq/{id}:replay.
#include <limits>
#include <map>

#include "backbone/event_json.h"
#include "server/cluster_json.h"
#include "server/http.h"
#include "server/stats_json.h"

namespace backbone::server {

void add_admin_routes(httplib::Server& s, App& app) {
  s.Get(R"(/v1/envs/([^/]+)/topology)",
        [&app](const httplib::Request& req, httplib::Response& res) {
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
                {"ack_deadline_seconds", static_cast<double>(c.ack_deadline_us) / kSecond}};
            j["backlog"] = backlog_json(app.broker().stats(c.name));
            subs.push_back(j);
          }
          send_json(res, 200, {{"env", env}, {"topics", topics}, {"subscriptions", subs}});
        });

  // The processes serving the environment and who owns which bucket, as this process last read
  // them from the store (doc/scale_out.md); ?since=V&wait_ms=M waits for a change.
  s.Get(R"(/v1/envs/([^/]+)/cluster)", [&app](const httplib::Request& req, httplib::Response& res) {
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

  s.Get(R"(/v1/envs/([^/]+)/dlq)", [&app](const httplib::Request& req, httplib::Response& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    auto list = (*p)->dlq_list();
    if (!list.ok()) return send_error(res, list.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *list) {
      out.push_back(
          {{"event", nlohmann::json::parse(event_to_json(e.event.event))},
           {"dead_lettered_at", e.dead_lettered.created_at.to_rfc3339()},
           {"detail", e.dead_lettered.detail ? nlohmann::json::parse(*e.dead_lettered.detail)
                                             : nlohmann::json(nullptr)}});
    }
    send_json(res, 200, {{"dead_letters", out}});
  });

  s.Post(R"(/v1/envs/([^/]+)/dlq/([^/:]+):replay)",
         [&app](const httplib::Request& req, httplib::Response& res) {
           auto p = authorize(app, req, req.matches[1], auth::Permission::kAdmin);
           if (!p.ok()) return send_error(res, p.error());
           auto id = EventId::parse(req.matches[2].str());
           if (!id.ok())
             return send_error(res, make_error(Errc::kInvalidArgument, id.error().message, "id"));
           auto r = (*p)->dlq_replay(*id);
           if (!r.ok()) return send_error(res, r.error());
           send_json(res, 202, {{"replayed", id->str()}});
         });
}

}  // namespace backbone::server
