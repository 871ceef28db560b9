// A seek of one of the topology's subscriptions, by its role: an admin act, in the admin audit
// (doc/broker.md, "Snapshots and seek", says how it differs from dlq replay):
//   POST /v1/envs/{env}/subscriptions/{role}:seek  {"time": RFC 3339} or {"snapshot": name}
//
// Pull access for external consumers of the environment's "sync" subscription
// (events.merged.E.sync in the default topology):
//   POST /v1/envs/{env}/subscriptions/sync:pull               {"max_messages": N}
//   POST /v1/envs/{env}/subscriptions/sync:acknowledge        {"ack_ids": [...]}
//   POST /v1/envs/{env}/subscriptions/sync:modifyAckDeadline  {"ack_ids": [...],
//                                                              "ack_deadline_seconds": N}
// Through any process (doc/scale_out.md): they go to App::consumer_broker(), which reaches the
// members that serve the other buckets (spread_broker.h).
//
// And the member calls that it makes, answered from this process's own part alone (for another
// member of the environment's cluster only: its id in X-Backbone-Member, its key as the bearer
// token):
//   POST /v1/envs/{env}/cluster:pull               {"subscription", "max_messages"} -> CBOR
//   POST /v1/envs/{env}/cluster:acknowledge        {"subscription", "ack_ids"}
//   POST /v1/envs/{env}/cluster:modifyAckDeadline  {"subscription", "ack_ids", "deadline_us"}
//   POST /v1/envs/{env}/cluster:nack               {"subscription", "ack_ids"[, "deadline_us"]}
//   POST /v1/envs/{env}/cluster:tick               {} (a member left: rebalance now)
#include "server/http.h"
#include "server/spread_broker.h"

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

nlohmann::json received_json(const ReceivedMessage& m) {
  auto data = nlohmann::json::parse(m.message.data, nullptr, false);
  return {{"ack_id", m.ack_id},
          {"delivery_attempt", m.delivery_attempt},
          {"message",
           {{"message_id", m.message.id},
            {"data", data.is_discarded() ? nlohmann::json(m.message.data) : data},
            {"attributes", m.message.attributes},
            {"ordering_key", m.message.ordering_key},
            {"publish_time", m.message.publish_time.to_rfc3339()}}}};
}

// The JSON object body of a POST (415, 400 otherwise).
Result<nlohmann::json> object_body(const http::HttpRequest& req) {
  if (auto r = require_json(req); !r.ok()) return r.error();
  auto body = parse_body(req);
  if (!body.ok()) return body.error();
  if (!body->is_object()) return make_error(Errc::kInvalidArgument, "must be an object", "body");
  return body;
}

// This process's keeper of `env`, if the request is a member call from another member of its
// cluster.
Result<cluster::LeaseKeeper*> from_member(App& app, const http::HttpRequest& req,
                                          const std::string& env) {
  cluster::LeaseKeeper* keeper = app.lease_keeper(env);
  constexpr std::string_view kBearer = "Bearer ";
  const std::string auth = req.header("Authorization");
  if (keeper == nullptr || !auth.starts_with(kBearer) ||
      !keeper->is_member_key(req.header(kMemberHeader), auth.substr(kBearer.size()))) {
    return make_error(Errc::kUnauthenticated,
                      "member calls are for the members of the environment's cluster");
  }
  return keeper;
}

// A member call on one of the subscriptions that are spread; returns that subscription.
Result<std::string> member_call(App& app, const http::HttpRequest& req, const std::string& env,
                                const nlohmann::json& body) {
  if (auto k = from_member(app, req, env); !k.ok()) return k.error();
  if (!body.contains("subscription") || !body["subscription"].is_string()) {
    return make_error(Errc::kInvalidArgument, "must be a string", "subscription");
  }
  std::string sub = body["subscription"].get<std::string>();
  if (app.spread_env(sub) != env) {
    return make_error(Errc::kNotFound, "subscription " + sub + " is not spread over members");
  }
  return sub;
}

}  // namespace

void add_subscription_routes(http::Router& s, App& app) {
  s.post(R"(/v1/envs/([^/]+)/subscriptions/([a-z]+):(pull|acknowledge|modifyAckDeadline))",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
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
           auto body = object_body(req);
           if (!body.ok()) return send_error(res, body.error());
           Broker& broker = app.consumer_broker();
           if (verb == "pull") {
             auto max = body_int(*body, "max_messages", 100, 1, 1000);
             if (!max.ok()) return send_error(res, max.error());
             auto got = broker.pull(sub->name, static_cast<size_t>(*max));
             if (!got.ok()) return send_error(res, got.error());
             nlohmann::json out = nlohmann::json::array();
             for (const auto& m : *got) out.push_back(received_json(m));
             return send_json(res, 200, {{"received_messages", out}});
           }
           auto ids = ack_ids(*body);
           if (!ids.ok()) return send_error(res, ids.error());
           if (verb == "acknowledge") {
             auto r = broker.ack(sub->name, *ids);
             if (!r.ok()) return send_error(res, r.error());
             return send_json(res, 200, {{"acknowledged", *r}});
           }
           auto seconds = body_int(*body, "ack_deadline_seconds", -1, 0, 600);
           if (!seconds.ok()) return send_error(res, seconds.error());
           if (*seconds < 0) {
             return send_error(
                 res, make_error(Errc::kInvalidArgument, "is required", "ack_deadline_seconds"));
           }
           auto r = broker.modify_ack_deadline(sub->name, *ids, *seconds * kSecond);
           if (!r.ok()) return send_error(res, r.error());
           send_json(res, 200, nlohmann::json::object());
         });

  s.post(R"(/v1/envs/([^/]+)/subscriptions/([a-z]+):seek)", [&app](const http::HttpRequest& req,
                                                                   http::HttpResponse& res) {
    const std::string env = req.matches[1], role = req.matches[2];
    auto a = authorize_admin(app, req);
    if (!a.ok()) return send_error(res, a.error());
    auto sub = app.topology().subscription_for(role, env);
    if (!sub.ok()) return send_error(res, sub.error());
    auto body = object_body(req);
    if (!body.ok()) return send_error(res, body.error());
    const bool has_time = body->contains("time"), has_snapshot = body->contains("snapshot");
    if (has_time == has_snapshot) {
      return send_error(
          res, make_error(Errc::kInvalidArgument, "give either a time or a snapshot", "body"));
    }
    const char* field = has_time ? "time" : "snapshot";
    if (!(*body)[field].is_string()) {
      return send_error(res, make_error(Errc::kInvalidArgument, "must be a string", field));
    }
    const std::string value = (*body)[field].get<std::string>();
    Result<void> sought = make_error(Errc::kInternal, "not sought");
    if (has_time) {
      auto at = Timestamp::parse_rfc3339(value);
      if (!at.ok()) {
        return send_error(res,
                          make_error(Errc::kInvalidArgument, "must be an RFC 3339 time", "time"));
      }
      sought = app.broker().seek_to_time(sub->name, *at);
    } else {
      sought = app.broker().seek_to_snapshot(sub->name, value);
    }
    if (!sought.ok()) return send_error(res, sought.error());
    if (auto rec =
            app.record_admin(env, a->actor, "subscription.seek", sub->name,
                             nlohmann::json{{field, value}}.dump(), "the subscription was sought");
        !rec.ok()) {
      return send_error(res, rec.error());
    }
    send_json(res, 200, {{"subscription", sub->name}, {field, value}});
  });

  // A member that leaves asks the others to look at the leases now, not at their next beat.
  s.post(R"(/v1/envs/([^/]+)/cluster:tick)",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
           auto keeper = from_member(app, req, req.matches[1]);
           if (!keeper.ok()) return send_error(res, keeper.error());
           (*keeper)->poke();
           send_json(res, 200, nlohmann::json::object());
         });

  s.post(R"(/v1/envs/([^/]+)/cluster:(pull|acknowledge|modifyAckDeadline|nack))",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
           const std::string env = req.matches[1], verb = req.matches[2];
           auto body = object_body(req);
           if (!body.ok()) return send_error(res, body.error());
           auto sub = member_call(app, req, env, *body);
           if (!sub.ok()) return send_error(res, sub.error());
           Broker& mine = app.broker();  // this process's part alone
           if (verb == "pull") {
             auto max = body_int(*body, "max_messages", 0, 1, 1000);
             if (!max.ok() || *max == 0) {
               return send_error(
                   res, make_error(Errc::kInvalidArgument, "must be 1 to 1000", "max_messages"));
             }
             auto got = mine.pull(*sub, static_cast<size_t>(*max));
             if (!got.ok()) return send_error(res, got.error());
             return res.set_content(encode_deliveries(*got), "application/cbor");
           }
           auto ids = ack_ids(*body);
           if (!ids.ok()) return send_error(res, ids.error());
           auto us = body_int(*body, "deadline_us", -1, 0, 600 * kSecond);
           if (!us.ok()) return send_error(res, us.error());
           if (verb == "acknowledge") {
             auto r = mine.ack(*sub, *ids);
             if (!r.ok()) return send_error(res, r.error());
             return send_json(res, 200, {{"counted", *r}});
           }
           Result<void> r =
               verb == "nack"
                   ? mine.nack(*sub, *ids, *us < 0 ? std::nullopt : std::optional<int64_t>(*us))
                   : mine.modify_ack_deadline(*sub, *ids, *us);
           if (!r.ok()) return send_error(res, r.error());
           send_json(res, 200, {{"counted", ids->size()}});
         });
}

}  // namespace backbone::server
