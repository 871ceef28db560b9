// The audit log (doc/audit_chain.md): GET /v1/envs/{env}/audit (a page in id order),
// GET /v1/envs/{env}/audit/{id} (an entry and its writer slot's chain around it, each link
// recomputed), POST and GET /v1/envs/{env}/audit:verify (a verification of the whole log in the
// background, and its progress: audit_jobs.h).
#include "backbone/event_json.h"
#include "server/http.h"

namespace backbone::server {
namespace {

// The smallest id at `millis`: a scan after it starts with that millisecond's entries.
EventId floor_at(int64_t millis) {
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(millis >> (8 * (5 - i)));
  return EventId::from_bytes(b);
}

// Up to `want` entries of `slot` before `id` (oldest first), from scans that reach further back
// (1 s, then 10 s, 100 s, 1000 s before `id`) until they hold enough.
Result<std::vector<AuditEntry>> before_in_slot(EventStore& store, const EventId& id, uint32_t slot,
                                               const std::optional<EventId>& legacy_until,
                                               size_t want) {
  constexpr size_t kScan = 5000;
  std::vector<AuditEntry> found;
  for (int64_t back_ms = 1000; back_ms <= 1'000'000; back_ms *= 10) {
    found.clear();
    const int64_t from = id.unix_millis() - back_ms;
    std::optional<EventId> after;
    if (from > 0) after = floor_at(from);
    size_t scanned = 0;
    bool reached = false;
    while (scanned < kScan && !reached) {
      auto page = store.scan_audit(after, 1000);
      if (!page.ok()) return page.error();
      if (page->empty()) break;
      for (const AuditEntry& e : *page) {
        if (!(e.id < id)) {
          reached = true;
          break;
        }
        if (AuditHead::slot_of(e.id, legacy_until) == slot) found.push_back(e);
      }
      scanned += page->size();
      after = page->back().id;
    }
    if (found.size() >= want || from <= 0 || !reached) break;
  }
  if (found.size() > want) found.erase(found.begin(), found.end() - static_cast<long>(want));
  return found;
}

}  // namespace

void add_audit_routes(http::Router& s, App& app) {
  s.get(R"(/v1/envs/([^/]+)/audit)", [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    std::optional<EventId> after;
    if (req.has_param("after")) {
      auto a = EventId::parse(req.param("after"));
      if (!a.ok())
        return send_error(res, make_error(Errc::kInvalidArgument, a.error().message, "after"));
      after = *a;
    }
    auto limit = query_int(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return send_error(res, limit.error());
    auto page = (*p)->ingest_store().scan_audit(after, static_cast<size_t>(*limit));
    if (!page.ok()) return send_error(res, page.error());
    std::string out = "{\"audit\":[";
    for (size_t i = 0; i < page->size(); ++i)
      out += (i ? "," : "") + audit_entry_to_json((*page)[i]);
    out += "],\"next\":";
    out += page->size() == static_cast<size_t>(*limit) ? "\"" + page->back().id.str() + "\""
                                                       : std::string("null");
    res.status = 200;
    res.set_content(out + "}", "application/json");
  });

  // ?context=N (1-50, default 5): entries of the same writer slot on each side.
  s.get(R"(/v1/envs/([^/]+)/audit/([^/:]+))", [&app](const http::HttpRequest& req,
                                                     http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    auto id = path_event_id(req);
    if (!id.ok()) return send_error(res, id.error());
    auto context = query_int(req, "context", 5, 1, 50);
    if (!context.ok()) return send_error(res, context.error());
    EventStore& store = (*p)->ingest_store();
    auto heads = store.audit_heads();
    if (!heads.ok()) return send_error(res, heads.error());
    if (heads->empty()) {
      return send_error(res, make_error(Errc::kDataLoss, "the store records no audit chain heads"));
    }
    const std::optional<EventId> legacy_until = heads->front().legacy_until;
    // The entry itself, and what follows it in its slot.
    std::optional<EventId> from_id;
    if (id->unix_millis() > 0) from_id = floor_at(id->unix_millis());
    // At most kScanAfter entries past it are read, however sparse its slot is there.
    constexpr size_t kScanAfter = 5000;
    std::vector<AuditEntry> after;
    std::optional<AuditEntry> entry;
    size_t scanned = 0;
    for (std::optional<EventId> cursor = from_id;
         after.size() < static_cast<size_t>(*context) && scanned < kScanAfter;) {
      auto page = store.scan_audit(cursor, 1000);
      if (!page.ok()) return send_error(res, page.error());
      if (page->empty()) break;
      scanned += page->size();
      for (const AuditEntry& e : *page) {
        if (e.id < *id) continue;
        if (e.id == *id) {
          entry = e;
          continue;
        }
        if (!entry) break;
        if (AuditHead::slot_of(e.id, legacy_until) == AuditHead::slot_of(*id, legacy_until) &&
            after.size() < static_cast<size_t>(*context)) {
          after.push_back(e);
        }
      }
      if (!entry) break;
      cursor = page->back().id;
    }
    if (!entry) {
      return send_error(res, make_error(Errc::kNotFound, "no audit entry " + id->str()));
    }
    const uint32_t slot = AuditHead::slot_of(*id, legacy_until);
    auto before = before_in_slot(store, *id, slot, legacy_until, static_cast<size_t>(*context));
    if (!before.ok()) return send_error(res, before.error());
    // The chain in order, each link recomputed from the entry before it (the first one shown
    // has no known predecessor unless it is the slot's first).
    std::vector<AuditEntry> chain = std::move(*before);
    const size_t at = chain.size();
    chain.push_back(*entry);
    chain.insert(chain.end(), after.begin(), after.end());
    std::string out = "{\"slot\":" + std::to_string(slot) +
                      ",\"entry\":" + audit_entry_to_json(*entry) +
                      ",\"position\":" + std::to_string(at) + ",\"chain\":[";
    for (size_t i = 0; i < chain.size(); ++i) {
      nlohmann::json link = nullptr;
      if (i > 0) link = audit_chain_hash(chain[i - 1].chain_hash, chain[i]) == chain[i].chain_hash;
      out += (i ? "," : "") + std::string("{\"entry\":") + audit_entry_to_json(chain[i]) +
             ",\"links\":" + link.dump() + "}";
    }
    out += "]}";
    res.status = 200;
    res.set_content(out, "application/json");
  });

  s.post(R"(/v1/envs/([^/]+)/audit:verify)",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
           const std::string env = req.matches[1];
           auto p = authorize(app, req, env, auth::Permission::kRead);
           if (!p.ok()) return send_error(res, p.error());
           auto who = app.tokens().authenticate_bearer(req.header("Authorization"));
           const AuditJobStatus st = app.audit_jobs().start(
               env, [&app, env] { return app.open_store(env, Role::kReader); },
               who.ok() ? who->actor() : "");
           res.status = 202;
           res.set_content(audit_job_to_json(env, st), "application/json");
         });
  s.get(R"(/v1/envs/([^/]+)/audit:verify)",
        [&app](const http::HttpRequest& req, http::HttpResponse& res) {
          const std::string env = req.matches[1];
          auto p = authorize(app, req, env, auth::Permission::kRead);
          if (!p.ok()) return send_error(res, p.error());
          auto st = app.audit_jobs().status(env);
          if (!st) {
            // None since this process started: not an error for a page that asks before it offers
            // to start one.
            return send_json(res, 200, {{"env", env}, {"running", false}, {"started", false}});
          }
          res.status = 200;
          res.set_content(audit_job_to_json(env, *st), "application/json");
        });
}

}  // namespace backbone::server
