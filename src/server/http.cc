#include "server/http.h"

#include "backbone/error.h"
#include "core/json_internal.h"

namespace backbone::server {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, const Error& e) {
  send_json(res, http_status(e.code),
            {{"error",
              {{"code", errc_name(e.code)},
               {"message", e.message},
               {"details",
                e.location().empty() ? nlohmann::json(nullptr) : nlohmann::json(e.location())}}}});
}

Result<pipeline::EnvironmentPipeline*> authorize(App& app, const httplib::Request& req,
                                                 const std::string& env,
                                                 auth::Permission permission) {
  auto p = app.pipeline(env);
  if (!p.ok()) return p.error();
  auto principal = app.tokens().authenticate_bearer(req.get_header_value("Authorization"));
  if (!principal.ok()) return principal.error();
  BACKBONE_TRY(auth::require(*principal, env, permission));
  return *p;
}

Result<void> require_json(const httplib::Request& req) {
  const std::string type = req.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) != 0) {
    return make_error(Errc::kUnsupportedMedia,
                      "the body must be application/json, not \"" + type + "\"", "Content-Type");
  }
  return {};
}

Result<nlohmann::json> parse_body(const httplib::Request& req) {
  auto j = json_internal::parse_strict(req.body);
  if (!j.ok()) return make_error(Errc::kInvalidArgument, j.error().message, "body");
  return std::move(*j);
}

}  // namespace backbone::server
