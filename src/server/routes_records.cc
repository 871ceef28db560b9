// GET /v1/envs/{env}/records/{type}/{id} (?min_version, wait_ms: waits for a version),
// .../events (ordered history), .../audit and .../timeline (pipeline/timeline.h).
#include <limits>

#include "backbone/event_json.h"
#include "pipeline/rebuild.h"
#include "pipeline/timeline.h"
#include "server/http.h"

namespace backbone::server {
namespace {

Result<RecordKey> record_key(const http::HttpRequest& req) {
  RecordKey k{req.matches[2], req.matches[3]};
  if (!is_valid_name(k.record_type)) {
    return make_error(Errc::kInvalidArgument, "must match [a-z][a-z0-9_.-]{0,63}", "record_type");
  }
  if (!is_valid_record_id(k.record_id)) {
    return make_error(Errc::kInvalidArgument, "must be 1-191 bytes of printable UTF-8",
                      "record_id");
  }
  return k;
}

}  // namespace

void add_record_routes(http::Router& s, App& app) {
  const std::string base = R"(/v1/envs/([^/]+)/records/([^/]+)/([^/]+))";
  s.get(base, [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    auto key = record_key(req);
    if (!key.ok()) return send_error(res, key.error());
    // ?min_version=N&wait_ms=M: answers once the record reaches version N, or after M ms
    // (at most 30,000) with what it has.
    auto min_version = query_int(req, "min_version", 0, 0, std::numeric_limits<int64_t>::max());
    if (!min_version.ok()) return send_error(res, min_version.error());
    auto wait_ms = query_int(req, "wait_ms", 0, 0, 30'000);
    if (!wait_ms.ok()) return send_error(res, wait_ms.error());
    // ?version=N: the state as of version N, folded from the audit log.
    auto as_of = query_int(req, "version", 0, 1, std::numeric_limits<int64_t>::max());
    if (!as_of.ok()) return send_error(res, as_of.error());
    auto r = *as_of > 0
                 ? pipeline::record_as_of((*p)->ingest_store(), *key, static_cast<uint64_t>(*as_of))
                 : (*p)->merger().wait_for_version(*key, static_cast<uint64_t>(*min_version),
                                                   *wait_ms * 1000);
    if (!r.ok()) return send_error(res, r.error());
    if (!*r && *as_of > 0) {
      return send_error(
          res, make_error(Errc::kNotFound, key->record_type + "/" + key->record_id +
                                               " has no version " + std::to_string(*as_of)));
    }
    if (!*r) {
      return send_error(
          res, make_error(Errc::kNotFound, "no merged version of " + key->record_type + "/" +
                                               key->record_id + " yet"));
    }
    send_json(res, 200,
              {{"record_type", key->record_type},
               {"record_id", key->record_id},
               {"version", (*r)->version},
               {"state", nlohmann::json::parse((*r)->state)},
               {"field_versions", nlohmann::json::parse((*r)->field_versions)},
               {"updated_at", (*r)->updated_at.to_rfc3339()}});
  });
  s.get(base + "/events", [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    auto key = record_key(req);
    if (!key.ok()) return send_error(res, key.error());
    auto h = (*p)->ingest_store().history(*key);
    if (!h.ok()) return send_error(res, h.error());
    std::string out = "{\"events\":[";
    for (size_t i = 0; i < h->size(); ++i) {
      if (i) out += ",";
      out += event_to_json((*h)[i].event, (*h)[i].processed);
    }
    res.status = 200;
    res.set_content(out + "]}", "application/json");
  });
  s.get(base + "/audit", [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    auto key = record_key(req);
    if (!key.ok()) return send_error(res, key.error());
    auto a = (*p)->ingest_store().audit_for_record(*key);
    if (!a.ok()) return send_error(res, a.error());
    std::string out = "{\"audit\":[";
    for (size_t i = 0; i < a->size(); ++i) out += (i ? "," : "") + audit_entry_to_json((*a)[i]);
    res.status = 200;
    res.set_content(out + "]}", "application/json");
  });
  // The record's timeline: each event with its merge decision and audit entries.
  s.get(base + "/timeline", [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    auto key = record_key(req);
    if (!key.ok()) return send_error(res, key.error());
    auto t = pipeline::record_timeline((*p)->ingest_store(), *key);
    if (!t.ok()) return send_error(res, t.error());
    res.status = 200;
    res.set_content(pipeline::timeline_to_json(*key, *t), "application/json");
  });
}

}  // namespace backbone::server
