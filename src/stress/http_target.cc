#include "stress/http_target.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "backbone/topology.h"

namespace backbone::stress {
namespace {

using nlohmann::json;

Error http_error(const std::string& what, const httplib::Result& r) {
  if (!r) return make_error(Errc::kUnavailable, what + ": " + httplib::to_string(r.error()));
  std::string message = r->body;
  auto body = json::parse(r->body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    message = body["error"].value("message", message);
  }
  return make_error(
      r->status == 401 || r->status == 403 ? Errc::kPermissionDenied : Errc::kUnavailable,
      what + ": HTTP " + std::to_string(r->status) + ": " + message);
}

httplib::Headers headers(const std::vector<std::pair<std::string, std::string>>& auth) {
  httplib::Headers h;
  for (const auto& [k, v] : auth) h.emplace(k, v);
  return h;
}

}  // namespace

HttpTarget::~HttpTarget() = default;

Result<std::unique_ptr<HttpTarget>> HttpTarget::connect(const std::string& url, std::string token,
                                                        std::string env) {
  if (url.rfind("http://", 0) != 0) {
    return make_error(Errc::kInvalidArgument, "want http://host:port, got \"" + url + "\"", "url");
  }
  if (token.empty()) {
    return make_error(Errc::kInvalidArgument,
                      "a token is needed (--token, or BACKBONE_TOKEN) with the publish, read "
                      "and subscribe roles",
                      "token");
  }
  std::unique_ptr<HttpTarget> t(new HttpTarget());
  t->client_ = std::make_unique<httplib::Client>(url);
  t->client_->set_connection_timeout(5);
  t->client_->set_read_timeout(120);
  t->client_->set_tcp_nodelay(true);
  t->env_ = std::move(env);
  t->auth_ = {{"Authorization", "Bearer " + token}};
  auto ready = t->client_->Get("/readyz");
  if (!ready || ready->status != 200) return http_error("GET " + url + "/readyz", ready);
  return t;
}

Result<std::vector<EventId>> HttpTarget::ingest(std::span<const EventDraft> drafts, size_t batch,
                                                const std::function<void(size_t)>& progress) {
  std::vector<EventId> ids;
  ids.reserve(drafts.size());
  const std::string path = "/v1/envs/" + env_ + "/events";
  for (size_t i = 0; i < drafts.size(); i += batch) {
    json body = json::array();
    for (size_t k = i; k < std::min(drafts.size(), i + batch); ++k) {
      const EventDraft& d = drafts[k];
      body.push_back({{"record_type", d.record_type},
                      {"record_id", d.record_id},
                      {"source", d.source},
                      {"base_version", d.base_version},
                      {"timestamp", d.timestamp ? json(d.timestamp->to_rfc3339()) : json()},
                      {"changes", json::parse(d.changes)}});
      if (!d.timestamp) body.back().erase("timestamp");
    }
    auto r = client_->Post(path, headers(auth_), body.dump(), "application/json");
    if (!r || r->status != 201) return http_error("POST " + path, r);
    const json answer = json::parse(r->body, nullptr, false);
    if (!answer.is_object() || !answer.contains("events")) {
      return make_error(Errc::kDataLoss, "POST " + path + ": the answer has no events");
    }
    for (const auto& e : answer["events"]) {
      auto id = EventId::parse(e.value("id", ""));
      if (!id.ok()) return make_error(Errc::kDataLoss, "POST " + path + ": a malformed id");
      ids.push_back(*id);
    }
    if (progress) progress(ids.size());
  }
  return ids;
}

Result<size_t> HttpTarget::send_malformed(size_t n) {
  const std::string path = "/v1/envs/" + env_ + "/events";
  size_t accepted = 0;
  for (size_t i = 0; i < n; ++i) {
    // Not an event: no record_id, and changes that are not an object.
    const std::string body = R"({"record_type":"stress","source":"stress","base_version":0,)"
                             R"("changes":"poison )" +
                             std::to_string(i) + R"("})";
    auto r = client_->Post(path, headers(auth_), body, "application/json");
    if (!r) return http_error("POST " + path, r);
    if (r->status != 400) ++accepted;
  }
  return accepted;
}

Result<bool> HttpTarget::stages_idle() {
  const std::string path = "/v1/envs/" + env_ + "/topology";
  auto r = client_->Get(path, headers(auth_));
  if (!r || r->status != 200) return http_error("GET " + path, r);
  const json topology = json::parse(r->body, nullptr, false);
  if (!topology.is_object() || !topology.contains("subscriptions")) {
    return make_error(Errc::kDataLoss, "GET " + path + ": no subscriptions in the answer");
  }
  const std::string merge = Topology::built_in().subscription_for("merge", env_)->name;
  const std::string retry = Topology::built_in().subscription_for("retry", env_)->name;
  for (const auto& s : topology["subscriptions"]) {
    const std::string name = s.value("name", "");
    const json& b = s["backlog"];
    if (name == merge && b.value("undelivered", 0) + b.value("in_flight", 0) != 0) return false;
    if (name == retry && b.value("in_flight", 0) != 0) return false;
  }
  return true;
}

void HttpTarget::use_for(VerifyInput& in) {
  const std::string sync = "/v1/envs/" + env_ + "/subscriptions/sync";
  in.next_merged = [this, sync]() -> Result<std::vector<MergedSeen>> {
    auto r = client_->Post(sync + ":pull", headers(auth_), R"({"max_messages":1000})",
                           "application/json");
    if (!r || r->status != 200) return http_error("POST " + sync + ":pull", r);
    const json got = json::parse(r->body, nullptr, false);
    std::vector<MergedSeen> out;
    json acks = json::array();
    for (const auto& m : got.value("received_messages", json::array())) {
      acks.push_back(m.value("ack_id", ""));
      const json& msg = m["message"];
      auto at = Timestamp::parse_rfc3339(msg.value("publish_time", ""));
      out.push_back(
          {msg.value("ordering_key", ""), msg["data"].dump(), at.ok() ? *at : Timestamp()});
    }
    if (!acks.empty()) {
      auto a = client_->Post(sync + ":acknowledge", headers(auth_), json{{"ack_ids", acks}}.dump(),
                             "application/json");
      if (!a || a->status != 200) return http_error("POST " + sync + ":acknowledge", a);
    }
    return out;
  };
  in.dead_letters = [this]() -> Result<std::vector<std::optional<std::string>>> {
    const std::string path = "/v1/envs/" + env_ + "/dlq";
    auto r = client_->Get(path, headers(auth_));
    if (!r || r->status != 200) return http_error("GET " + path, r);
    const json got = json::parse(r->body, nullptr, false);
    std::vector<std::optional<std::string>> out;
    for (const auto& d : got.value("dead_letters", json::array())) {
      out.push_back(d["event"].value("id", ""));
    }
    return out;
  };
}

}  // namespace backbone::stress
