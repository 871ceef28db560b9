// POST /v1/envs/{env}/events (one event or a batch) and GET /v1/envs/{env}/events/{id}
// (?wait_ms: waits for it to be processed).
#include "backbone/event_json.h"
#include "core/json_internal.h"
#include "server/http.h"

namespace backbone::server {

Result<IngestBody> parse_ingest_body(std::string_view body, size_t max_batch) {
  auto j = json_internal::parse_strict(body);
  if (!j.ok()) return make_error(Errc::kInvalidArgument, j.error().message, "body");
  IngestBody out;
  out.batch = j->is_array();
  if (!out.batch && !j->is_object()) {
    return make_error(Errc::kInvalidArgument,
                      "the body must be an event object or an array of events", "body");
  }
  const size_t count = out.batch ? j->size() : 1;
  if (count == 0) return make_error(Errc::kInvalidArgument, "the batch is empty", "body");
  if (count > max_batch) {
    return make_error(Errc::kTooLarge,
                      "a batch holds at most " + std::to_string(max_batch) + " events, not " +
                          std::to_string(count),
                      "body");
  }
  out.drafts.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    // The body was parsed once, strictly; each item is read from it.
    auto d = json_internal::event_draft_from_json(out.batch ? (*j)[i] : *j);
    if (!d.ok()) {
      Error e = d.error();
      if (out.batch) e = std::move(e).at_item("events", i);
      return e;
    }
    out.drafts.push_back(std::move(*d));
  }
  return out;
}

void add_event_routes(http::Router& s, App& app) {
  s.post(R"(/v1/envs/([^/]+)/events)",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
           auto p = authorize(app, req, req.matches[1], auth::Permission::kPublish);
           if (!p.ok()) return send_error(res, p.error());
           if (auto r = require_json(req); !r.ok()) return send_error(res, r.error());
           auto parsed = parse_ingest_body(req.body, app.config().max_batch);
           if (!parsed.ok()) return send_error(res, parsed.error());
           const bool batch = parsed->batch;
           std::vector<EventDraft>& drafts = parsed->drafts;
           auto out = (*p)->ingest(drafts);
           if (!out.ok()) {
             Error e = out.error();
             if (!batch) e.item.reset();  // one event, not a batch: name only its field
             return send_error(res, e);
           }
           nlohmann::json events = nlohmann::json::array();
           for (const auto& o : *out) {
             events.push_back(
                 {{"id", o.id.str()}, {"fingerprint", o.fingerprint}, {"duplicate", o.duplicate}});
           }
           send_json(res, 201, {{"events", events}});
         });

  // ?fingerprint=F: the events whose content has that fingerprint (the same change sent under
  // several ids, or one event's), found through the audit log.
  s.get(R"(/v1/envs/([^/]+)/events)", [&app](const http::HttpRequest& req,
                                             http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    const std::string fp = req.param("fingerprint");
    if (fp.size() != 64 || fp.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return send_error(res, make_error(Errc::kInvalidArgument,
                                        "give ?fingerprint= as 64 lowercase hex digits (SHA-256)",
                                        "fingerprint"));
    }
    auto entries = (*p)->ingest_store().audit_by_fingerprint(fp);
    if (!entries.ok()) return send_error(res, entries.error());
    std::vector<EventId> ids;
    for (const AuditEntry& e : *entries) {
      if (std::find(ids.begin(), ids.end(), e.event_id) == ids.end()) ids.push_back(e.event_id);
    }
    std::string out = "{\"events\":[";
    for (size_t i = 0; i < ids.size(); ++i) {
      auto e = (*p)->ingest_store().get(ids[i]);
      if (!e.ok()) return send_error(res, e.error());
      out += (i ? "," : "") + event_to_json(e->event, e->processed);
    }
    res.status = 200;
    res.set_content(out + "]}", "application/json");
  });

  s.get(R"(/v1/envs/([^/]+)/events/([^/]+))",
        [&app](const http::HttpRequest& req, http::HttpResponse& res) {
          auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
          if (!p.ok()) return send_error(res, p.error());
          auto id = path_event_id(req);
          if (!id.ok()) return send_error(res, id.error());
          // ?wait_ms=M: answers once the event is processed (merged or dead-lettered by this
          // process), or after M ms (at most 30,000) with what it has.
          auto wait_ms = query_int(req, "wait_ms", 0, 0, 30'000);
          if (!wait_ms.ok()) return send_error(res, wait_ms.error());
          auto e = *wait_ms > 0 ? (*p)->merger().wait_for_processed(*id, *wait_ms * 1000)
                                : (*p)->ingest_store().get(*id);
          if (!e.ok()) return send_error(res, e.error());
          res.status = 200;
          res.set_content(event_to_json(e->event, e->processed), "application/json");
        });
}

}  // namespace backbone::server
