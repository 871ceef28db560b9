#include "server/http.h"

#include <charconv>

#include "backbone/error.h"
#include "core/json_internal.h"

namespace backbone::server {

void send_json(http::HttpResponse& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(http::HttpResponse& res, const Error& e) {
  // A backend that is down, busy or out of space: the same request may be sent again (RFC 9110
  // §10.2.3); ingest answers an event stored before as a duplicate.
  if (e.code == Errc::kUnavailable) res.headers.emplace_back("Retry-After", "1");
  send_json(res, http_status(e.code),
            {{"error",
              {{"code", errc_name(e.code)},
               {"message", e.message},
               {"details",
                e.location().empty() ? nlohmann::json(nullptr) : nlohmann::json(e.location())}}}});
}

Result<Admin> authorize_admin(App& app, const http::HttpRequest& req) {
  auto p = authorize(app, req, req.matches[1], auth::Permission::kAdmin);
  if (!p.ok()) return p.error();
  auto who = app.tokens().authenticate_bearer(req.header("Authorization"));
  if (!who.ok()) return who.error();
  return Admin{*p, who->actor()};
}

Result<pipeline::EnvironmentPipeline*> authorize(App& app, const http::HttpRequest& req,
                                                 const std::string& env,
                                                 auth::Permission permission) {
  auto p = app.pipeline(env);
  if (!p.ok()) return p.error();
  auto principal = app.tokens().authenticate_bearer(req.header("Authorization"));
  if (!principal.ok()) return principal.error();
  BACKBONE_TRY(auth::require(*principal, env, permission));
  return *p;
}

Result<void> require_json(const http::HttpRequest& req) {
  const std::string type = req.header("Content-Type");
  if (type.rfind("application/json", 0) != 0) {
    return make_error(Errc::kUnsupportedMedia,
                      "the body must be application/json, not \"" + type + "\"", "Content-Type");
  }
  return {};
}

Result<EventId> path_event_id(const http::HttpRequest& req) {
  auto id = EventId::parse(req.matches[2]);
  if (!id.ok()) return make_error(Errc::kInvalidArgument, id.error().message, "id");
  return *id;
}

Result<nlohmann::json> parse_body(const http::HttpRequest& req) {
  auto j = json_internal::parse_strict(req.body);
  if (!j.ok()) return make_error(Errc::kInvalidArgument, j.error().message, "body");
  return std::move(*j);
}

}  // namespace backbone::server

namespace backbone::server {

Result<int64_t> query_int(const http::HttpRequest& req, const char* name, int64_t absent,
                          int64_t min, int64_t max) {
  if (!req.has_param(name)) return absent;
  const std::string text = req.param(name);
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return make_error(
        Errc::kInvalidArgument,
        "must be an integer from " + std::to_string(min) + " to " + std::to_string(max), name);
  }
  return v;
}

Result<int64_t> body_int(const nlohmann::json& body, const char* name, int64_t absent, int64_t min,
                         int64_t max) {
  auto it = body.find(name);
  if (it == body.end()) return absent;
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
    return make_error(
        Errc::kInvalidArgument,
        "must be an integer from " + std::to_string(min) + " to " + std::to_string(max), name);
  }
  return it->get<int64_t>();
}

}  // namespace backbone::server
