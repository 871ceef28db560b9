#include "stress/http_target.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "backbone/topology.h"
#include "core/json_internal.h"

namespace backbone::stress {
namespace {

using json_internal::array_field;
using json_internal::field;
using json_internal::optional_field;
using nlohmann::json;

// The body of a 2xx answer as JSON; kDataLoss when it is not JSON (a truncated answer).
Result<json> answer_body(const std::string& what, const httplib::Result& r) {
  json body = json::parse(r->body, nullptr, false);
  if (body.is_discarded()) {
    return make_error(Errc::kDataLoss, what + ": the answer is not JSON (" +
                                           std::to_string(r->body.size()) + " bytes)");
  }
  return body;
}

// Whether a stage of the topology answer has nothing left: in flight (and, with
// `count_waiting`, undelivered). Where the broker cannot know the subscription's figures
// (pubsub://), the answering process's own part decides; where the answer has neither, the
// store does (the caller waits for every event to be processed first).
Result<bool> stage_idle(const json& sub, bool count_waiting, const std::string& what) {
  BACKBONE_ASSIGN_OR_RETURN(auto backlog, optional_field<json>(sub, "backlog", what));
  if (!backlog) return true;
  BACKBONE_ASSIGN_OR_RETURN(auto undelivered,
                            optional_field<uint64_t>(*backlog, "undelivered", what));
  BACKBONE_ASSIGN_OR_RETURN(auto in_flight, optional_field<uint64_t>(*backlog, "in_flight", what));
  if (in_flight && (undelivered || !count_waiting)) {
    return *in_flight + (count_waiting ? *undelivered : 0) == 0;
  }
  BACKBONE_ASSIGN_OR_RETURN(auto client, optional_field<json>(*backlog, "client", what));
  if (!client) return true;
  BACKBONE_ASSIGN_OR_RETURN(auto out, field<uint64_t>(*client, "in_flight", what));
  BACKBONE_ASSIGN_OR_RETURN(auto held, field<uint64_t>(*client, "held", what));
  return out + (count_waiting ? held : 0) == 0;
}

Error http_error(const std::string& what, const httplib::Result& r) {
  if (!r) return make_error(Errc::kUnavailable, what + ": " + httplib::to_string(r.error()));
  std::string message = r->body;
  auto body = json::parse(r->body, nullptr, false);
  if (body.is_object() && body.contains("error")) {
    auto m = json_internal::optional_field<std::string>(body["error"], "message", what);
    if (m.ok() && *m) message = **m;
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

std::string ingest_body(std::span<const EventDraft> drafts) {
  json body = json::array();
  for (const EventDraft& d : drafts) {
    body.push_back({{"record_type", d.record_type},
                    {"record_id", d.record_id},
                    {"source", d.source},
                    {"base_version", d.base_version},
                    {"changes", json::parse(d.changes)}});
    if (d.timestamp) body.back()["timestamp"] = d.timestamp->to_rfc3339();
  }
  return body.dump();
}

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
    const size_t n = std::min(drafts.size(), i + batch) - i;
    auto r =
        client_->Post(path, headers(auth_), ingest_body(drafts.subspan(i, n)), "application/json");
    if (!r || r->status != 201) return http_error("POST " + path, r);
    const std::string what = "POST " + path;
    BACKBONE_ASSIGN_OR_RETURN(const json answer, answer_body(what, r));
    BACKBONE_ASSIGN_OR_RETURN(const json* events, array_field(answer, "events", what));
    if (events->size() != n) {
      return make_error(Errc::kDataLoss, what + ": the answer has " +
                                             std::to_string(events->size()) + " events for " +
                                             std::to_string(n) + " sent");
    }
    for (const auto& e : *events) {
      BACKBONE_ASSIGN_OR_RETURN(const std::string text, field<std::string>(e, "id", what));
      auto id = EventId::parse(text);
      if (!id.ok()) return make_error(Errc::kDataLoss, what + ": a malformed id: " + text);
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
  const std::string what = "GET " + path;
  BACKBONE_ASSIGN_OR_RETURN(const json topology, answer_body(what, r));
  BACKBONE_ASSIGN_OR_RETURN(const json* subs, array_field(topology, "subscriptions", what));
  const std::string merge = Topology::built_in().subscription_for("merge", env_)->name;
  const std::string retry = Topology::built_in().subscription_for("retry", env_)->name;
  for (const auto& s : *subs) {
    BACKBONE_ASSIGN_OR_RETURN(const std::string name, field<std::string>(s, "name", what));
    if (name != merge && name != retry) continue;
    // Retry copies waiting out a backoff change nothing once their events merged.
    BACKBONE_ASSIGN_OR_RETURN(const bool idle, stage_idle(s, name == merge, what));
    if (!idle) return false;
  }
  return true;
}

void HttpTarget::use_for(VerifyInput& in) {
  const std::string sync = "/v1/envs/" + env_ + "/subscriptions/sync";
  in.next_merged = [this, sync]() -> Result<std::vector<MergedSeen>> {
    auto r = client_->Post(sync + ":pull", headers(auth_), R"({"max_messages":1000})",
                           "application/json");
    if (!r || r->status != 200) return http_error("POST " + sync + ":pull", r);
    const std::string what = "POST " + sync + ":pull";
    BACKBONE_ASSIGN_OR_RETURN(const json got, answer_body(what, r));
    BACKBONE_ASSIGN_OR_RETURN(auto received, optional_field<json>(got, "received_messages", what));
    std::vector<MergedSeen> out;
    json acks = json::array();
    if (received && !received->is_array()) {
      return make_error(Errc::kDataLoss, what + ": received_messages is not an array");
    }
    for (const auto& m : received ? *received : json::array()) {
      BACKBONE_ASSIGN_OR_RETURN(std::string ack_id, field<std::string>(m, "ack_id", what));
      BACKBONE_ASSIGN_OR_RETURN(const json msg, field<json>(m, "message", what));
      BACKBONE_ASSIGN_OR_RETURN(auto key, optional_field<std::string>(msg, "ordering_key", what));
      BACKBONE_ASSIGN_OR_RETURN(const json data, field<json>(msg, "data", what));
      BACKBONE_ASSIGN_OR_RETURN(const std::string published,
                                field<std::string>(msg, "publish_time", what));
      auto at = Timestamp::parse_rfc3339(published);
      if (!at.ok()) return make_error(Errc::kDataLoss, what + ": a bad publish_time: " + published);
      acks.push_back(std::move(ack_id));
      out.push_back({key.value_or(""), data.dump(), *at});
    }
    if (!acks.empty()) {
      auto a = client_->Post(sync + ":acknowledge", headers(auth_), json{{"ack_ids", acks}}.dump(),
                             "application/json");
      if (!a || a->status != 200) return http_error("POST " + sync + ":acknowledge", a);
    }
    return out;
  };
  in.dead_letters = [this]() -> Result<std::vector<std::optional<std::string>>> {
    // A page of at most 1000 at a time, until a short one.
    constexpr size_t kPage = 1000;
    std::vector<std::optional<std::string>> out;
    for (size_t offset = 0;; offset += kPage) {
      const std::string path = "/v1/envs/" + env_ + "/dlq?limit=" + std::to_string(kPage) +
                               "&offset=" + std::to_string(offset);
      auto r = client_->Get(path, headers(auth_));
      if (!r || r->status != 200) return http_error("GET " + path, r);
      const std::string what = "GET " + path;
      BACKBONE_ASSIGN_OR_RETURN(const json got, answer_body(what, r));
      BACKBONE_ASSIGN_OR_RETURN(const json* letters, array_field(got, "dead_letters", what));
      for (const auto& d : *letters) {
        BACKBONE_ASSIGN_OR_RETURN(const json event, field<json>(d, "event", what));
        BACKBONE_ASSIGN_OR_RETURN(std::string id, field<std::string>(event, "id", what));
        out.push_back(std::move(id));
      }
      if (letters->size() < kPage) return out;
    }
  };
}

}  // namespace backbone::stress
