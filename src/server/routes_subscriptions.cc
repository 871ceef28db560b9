// Pull access for external consumers of the environment's "sync" subscription
// (events.merged.E.sync in the default topology):
//   POST /v1/envs/{env}/subscriptions/sync:pull               {"max_messages": N}
//   POST /v1/envs/{env}/subscriptions/sync:acknowledge        {"ack_ids": [...]}
//   POST /v1/envs/{env}/subscriptions/sync:modifyAckDeadline  {"ack_ids": [...],
//                                                              "ack_deadline_seconds": N}
//
// Through any process (doc/scale_out.md): when several processes serve the environment and the
// subscription is split into buckets, each serves the buckets it owns. A pull then takes what
// this process holds and asks the other members for the rest; every ack id it hands out names
// the member that delivered it ("<member>~<broker's ack id>"), and an ack or a deadline change
// goes to that member, so that it counts whichever process it reaches. A forwarded request
// (header X-Backbone-Forwarded) is answered from this process alone.
#include <map>

#include "server/http.h"

namespace backbone::server {
namespace {

constexpr const char* kForwarded = "X-Backbone-Forwarded";
constexpr char kMemberMark = '~';

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

// The other members of the cluster that serve the subscription, by id (with their addresses),
// when requests are to be spread; none when this process serves it alone.
struct Peers {
  std::string self;                            // this member's id; "" when not spreading
  std::map<std::string, std::string> address;  // other members' ids -> their HTTP address
};

Peers peers(App& app, const std::string& env, const std::string& subscription) {
  cluster::LeaseKeeper* keeper = app.lease_keeper(env);
  if (keeper == nullptr) return {};
  auto split = app.broker().buckets(subscription);
  if (!split.ok() || *split == 0) return {};
  Peers p;
  p.self = keeper->member();
  for (const ClusterMember& m : keeper->view().view.members) {
    if (m.id != p.self && !m.leaving && !m.address.empty()) p.address[m.id] = m.address;
  }
  return p;
}

// The same request, sent on to another member; its JSON answer, or nullopt when it did not
// answer with 200 (a member that is gone holds nothing that counts).
std::optional<nlohmann::json> forward(const httplib::Request& req, const std::string& address,
                                      const nlohmann::json& body) {
  httplib::Client c(address);
  c.set_connection_timeout(2);
  c.set_read_timeout(10);
  httplib::Headers h = {{kForwarded, "1"}};
  if (req.has_header("Authorization"))
    h.emplace("Authorization", req.get_header_value("Authorization"));
  auto r = c.Post(req.path, h, body.dump(), "application/json");
  if (!r || r->status != 200) return std::nullopt;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

// Ack ids by the member that delivered them: this process's under "" (also ids with no member,
// from a process that served alone), unwrapped; the others' as given.
std::map<std::string, std::vector<std::string>> by_member(const std::vector<std::string>& ids,
                                                          const Peers& peers) {
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& id : ids) {
    const size_t mark = id.find(kMemberMark);
    if (peers.self.empty() || mark == std::string::npos) {
      out[""].push_back(id);
    } else if (id.compare(0, mark, peers.self) == 0) {
      out[""].push_back(id.substr(mark + 1));
    } else {
      out[id.substr(0, mark)].push_back(id);
    }
  }
  return out;
}

nlohmann::json received_json(const ReceivedMessage& m, const std::string& member) {
  auto data = nlohmann::json::parse(m.message.data, nullptr, false);
  return {{"ack_id", member.empty() ? m.ack_id : member + kMemberMark + m.ack_id},
          {"delivery_attempt", m.delivery_attempt},
          {"message",
           {{"message_id", m.message.id},
            {"data", data.is_discarded() ? nlohmann::json(m.message.data) : data},
            {"attributes", m.message.attributes},
            {"ordering_key", m.message.ordering_key},
            {"publish_time", m.message.publish_time.to_rfc3339()}}}};
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
        const bool forwarded = req.has_header(kForwarded);
        const Peers cluster = peers(app, env, sub->name);
        if (verb == "pull") {
          const auto max = body->value("max_messages", 100);
          if (max < 1 || max > 1000) {
            return send_error(
                res, make_error(Errc::kInvalidArgument, "must be 1 to 1000", "max_messages"));
          }
          auto got = app.broker().pull(sub->name, static_cast<size_t>(max));
          if (!got.ok()) return send_error(res, got.error());
          nlohmann::json out = nlohmann::json::array();
          for (const auto& m : *got) out.push_back(received_json(m, cluster.self));
          if (!forwarded) {
            for (const auto& [member, address] : cluster.address) {
              if (out.size() >= static_cast<size_t>(max)) break;
              const nlohmann::json ask = {{"max_messages", max - static_cast<int>(out.size())}};
              auto theirs = forward(req, address, ask);
              if (!theirs || !(*theirs)["received_messages"].is_array()) continue;
              for (auto& m : (*theirs)["received_messages"]) out.push_back(std::move(m));
            }
          }
          return send_json(res, 200, {{"received_messages", out}});
        }
        auto ids = ack_ids(*body);
        if (!ids.ok()) return send_error(res, ids.error());
        const bool ack = verb == "acknowledge";
        const auto seconds = body->value("ack_deadline_seconds", -1);
        if (!ack && (seconds < 0 || seconds > 600)) {
          return send_error(
              res, make_error(Errc::kInvalidArgument, "must be 0 to 600", "ack_deadline_seconds"));
        }
        size_t acknowledged = 0;
        for (const auto& [member, mine] : by_member(*ids, cluster)) {
          if (!member.empty()) {
            // Another member's deliveries: its to settle (a member that is gone has none).
            auto it = cluster.address.find(member);
            if (forwarded || it == cluster.address.end()) continue;
            nlohmann::json ask = {{"ack_ids", mine}};
            if (!ack) ask["ack_deadline_seconds"] = seconds;
            auto theirs = forward(req, it->second, ask);
            if (ack && theirs) acknowledged += theirs->value("acknowledged", size_t{0});
            continue;
          }
          if (ack) {
            auto r = app.broker().ack(sub->name, mine);
            if (!r.ok()) return send_error(res, r.error());
            acknowledged += *r;
          } else {
            auto r = app.broker().modify_ack_deadline(sub->name, mine, seconds * kSecond);
            if (!r.ok()) return send_error(res, r.error());
          }
        }
        if (ack) return send_json(res, 200, {{"acknowledged", acknowledged}});
        send_json(res, 200, nlohmann::json::object());
      });
}

}  // namespace backbone::server
