// Pull access for external consumers of the environment's "sync" subscription
// (events.merged.E.sync in the default topology):
//   POST /v1/envs/{env}/subscriptions/sync:pull               {"max_messages": N}
//   POST /v1/envs/{env}/subscriptions/sync:acknowledge        {"ack_ids": [...]}
//   POST /v1/envs/{env}/subscriptions/sync:modifyAckDeadline  {"ack_ids": [...],
//                                                              "ack_deadline_seconds": N}
#include "server/http.h"

namespace backbone::server {
namespace {

Result<std::vector<std::string>> ack_ids(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("ack_ids") || !body["ack_ids"].is_array()) {
    return make_error(Errc::kInvalidArgument, "must be an array of strings", "ack_ids");
  }
  std::vector<std::string> out;
  for (const auto& id : body["ack_ids"]) {
    if (!id.is_string())
      return make_error(Errc::kInvalidArgument, "must be an array of strings", "ack_ids");
    out.push_back(id.get<std::string>());
  }
  return out;
}

}  // namespace

void add_subscription_routes(httplib::Server& s, App& app) {
  s.Post(
      R"(/v1/envs/([^/]+)/subscriptions/([a-z]+):(pull|acknowledge|modifyAckDeadline))",
      [&app](const httplib::Request& req, httplib::Response& res) {
        const std::string env = req.matches[1], role = req.matches[2], verb = req.matches[3];
        auto p = authorize(app, req, env, auth::Permission::kSubscribe);
        if (!p.ok()) return send_error(res, p.error());
        if (role != "sync") {
          return send_error(res, make_error(Errc::kNotFound,
                                            "external consumers may pull the "
                                            "sync subscription only"));
        }
        auto sub = app.topology().subscription_for(role, env);
        if (!sub.ok()) return send_error(res, sub.error());
        if (auto r = require_json(req); !r.ok()) return send_error(res, r.error());
        auto body = parse_body(req);
        if (!body.ok()) return send_error(res, body.error());
        if (!body->is_object()) {
          return send_error(res, make_error(Errc::kInvalidArgument, "must be an object", "body"));
        }
        if (verb == "pull") {
          const auto max = body->value("max_messages", 100);
          if (max < 1 || max > 1000) {
            return send_error(
                res, make_error(Errc::kInvalidArgument, "must be 1 to 1000", "max_messages"));
          }
          auto got = app.broker().pull(sub->name, static_cast<size_t>(max));
          if (!got.ok()) return send_error(res, got.error());
          nlohmann::json out = nlohmann::json::array();
          for (const auto& m : *got) {
            auto data = nlohmann::json::parse(m.message.data, nullptr, false);
            out.push_back({{"ack_id", m.ack_id},
                           {"delivery_attempt", m.delivery_attempt},
                           {"message",
                            {{"message_id", m.message.id},
                             {"data", data.is_discarded() ? nlohmann::json(m.message.data) : data},
                             {"attributes", m.message.attributes},
                             {"ordering_key", m.message.ordering_key},
                             {"publish_time", m.message.publish_time.to_rfc3339()}}}});
          }
          return send_json(res, 200, {{"received_messages", out}});
        }
        auto ids = ack_ids(*body);
        if (!ids.ok()) return send_error(res, ids.error());
        if (verb == "acknowledge") {
          auto r = app.broker().ack(sub->name, *ids);
          if (!r.ok()) return send_error(res, r.error());
          return send_json(res, 200, {{"acknowledged", *r}});
        }
        const auto seconds = body->value("ack_deadline_seconds", -1);
        if (seconds < 0 || seconds > 600) {
          return send_error(
              res, make_error(Errc::kInvalidArgument, "must be 0 to 600", "ack_deadline_seconds"));
        }
        auto r = app.broker().modify_ack_deadline(sub->name, *ids, seconds * kSecond);
        if (!r.ok()) return send_error(res, r.error());
        send_json(res, 200, nlohmann::json::object());
      });
}

}  // namespace backbone::server
