// Shared pieces of the HTTP routes: JSON responses, the error body of SPEC §6
// ({"error":{"code","message","details"}}, status from http_status()), and authorization.
#pragma once

#include "http/router.h"

#include <nlohmann/json.hpp>
#include <string>

#include "backbone/result.h"
#include "server/app.h"

namespace backbone::server {

void send_json(http::HttpResponse& res, int status, const nlohmann::json& body);
void send_error(http::HttpResponse& res, const Error& error);

// Checks, in order: the environment is served (404), the bearer token is known (401), the token
// is for this environment and has `role` (403). Returns the environment's pipeline.
Result<pipeline::EnvironmentPipeline*> authorize(App& app, const http::HttpRequest& req,
                                                 const std::string& env,
                                                 auth::Permission permission);
// The admin who acts in the environment of the path's first group: authorized (as authorize()),
// and named for the admin audit.
struct Admin {
  pipeline::EnvironmentPipeline* pipeline;
  std::string actor;
};
Result<Admin> authorize_admin(App& app, const http::HttpRequest& req);
// 415 unless the body is declared as JSON.
Result<void> require_json(const http::HttpRequest& req);
// The event id in the path's second group (kInvalidArgument, where = "id", if it is not one).
Result<EventId> path_event_id(const http::HttpRequest& req);
// Parses the body as strict JSON (400 naming the byte offset).
Result<nlohmann::json> parse_body(const http::HttpRequest& req);
// The query parameter `name` as an integer in [min, max]; `absent` when it is not given.
// kInvalidArgument (where = name) for anything else.
Result<int64_t> query_int(const http::HttpRequest& req, const char* name, int64_t absent,
                          int64_t min, int64_t max);

// The same for the integer field `name` of a JSON object body.
Result<int64_t> body_int(const nlohmann::json& body, const char* name, int64_t absent, int64_t min,
                         int64_t max);

// The body of POST /v1/envs/{env}/events: one event object, or an array of 1 to `max_batch`
// (kTooLarge beyond); kInvalidArgument naming the item and field at fault. Nothing is stored.
struct IngestBody {
  bool batch = false;
  std::vector<EventDraft> drafts;
};
Result<IngestBody> parse_ingest_body(std::string_view body, size_t max_batch);

// Route groups (one file each).
void add_event_routes(http::Router& s, App& app);
void add_record_routes(http::Router& s, App& app);
void add_admin_routes(http::Router& s, App& app);
void add_dlq_routes(http::Router& s, App& app);
void add_subscription_routes(http::Router& s, App& app);
void add_health_routes(http::Router& s, App& app);
void add_console_routes(http::Router& s, App& app);
void add_audit_routes(http::Router& s, App& app);

}  // namespace backbone::server
