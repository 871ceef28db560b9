// The dead-letter queue (pipeline/dlq.h): GET /v1/envs/{env}/dlq (filtered, paged), GET
// .../dlq/{id}, POST .../dlq/{id}:replay, POST .../dlq:replay (the filter's, or a dry run),
// POST .../dlq/{id}:resolve ({"resolution":"accept"|"discard","note"}); GET .../poison (the DLQ's
// messages that name no stored event, as this process's inspector holds them) and POST
// .../poison/{message_id}:discard. Every change is an admin act, in the admin audit with who did
// it.
#include <algorithm>
#include <limits>

#include "pipeline/dlq.h"
#include "server/http.h"

namespace backbone::server {
namespace {

// The filter of the query: ?record_type=&reason=&stage=&since=&until=.
Result<pipeline::DlqFilter> query_filter(const http::HttpRequest& req) {
  return pipeline::DlqFilter::from([&](const char* name) -> std::optional<std::string> {
    if (!req.has_param(name)) return std::nullopt;
    return req.param(name);
  });
}

void send_entries(http::HttpResponse& res, int status, const std::string& head,
                  const std::vector<pipeline::DlqEntry>& entries, size_t from, size_t count) {
  std::string out =
      "{" + head + "\"total\":" + std::to_string(entries.size()) + ",\"dead_letters\":[";
  for (size_t i = from; i < std::min(entries.size(), from + count); ++i) {
    out += (i > from ? "," : "") + pipeline::dlq_entry_to_json(entries[i], false);
  }
  res.status = status;
  res.set_content(out + "]}", "application/json");
}

}  // namespace

void add_dlq_routes(http::Router& s, App& app) {
  // ?offset=N&limit=M (at most 1000, default 100) over the filter's dead letters, in the order
  // they were dead-lettered; "total" counts them all.
  s.get(R"(/v1/envs/([^/]+)/dlq)", [&app](const http::HttpRequest& req, http::HttpResponse& res) {
    auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
    if (!p.ok()) return send_error(res, p.error());
    auto filter = query_filter(req);
    if (!filter.ok()) return send_error(res, filter.error());
    auto offset = query_int(req, "offset", 0, 0, std::numeric_limits<int32_t>::max());
    if (!offset.ok()) return send_error(res, offset.error());
    auto limit = query_int(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return send_error(res, limit.error());
    auto list = (*p)->dlq_list();
    if (!list.ok()) return send_error(res, list.error());
    std::erase_if(*list, [&](const pipeline::DlqEntry& e) { return !filter->matches(e); });
    send_entries(res, 200, "", *list, static_cast<size_t>(*offset), static_cast<size_t>(*limit));
  });

  s.get(R"(/v1/envs/([^/]+)/dlq/([^/:]+))",
        [&app](const http::HttpRequest& req, http::HttpResponse& res) {
          auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
          if (!p.ok()) return send_error(res, p.error());
          auto id = path_event_id(req);
          if (!id.ok()) return send_error(res, id.error());
          auto e = (*p)->dlq_show(*id);
          if (!e.ok()) return send_error(res, e.error());
          res.status = 200;
          res.set_content(pipeline::dlq_entry_to_json(*e, true), "application/json");
        });

  s.post(R"(/v1/envs/([^/]+)/dlq/([^/:]+):replay)",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
           auto a = authorize_admin(app, req);
           if (!a.ok()) return send_error(res, a.error());
           auto id = path_event_id(req);
           if (!id.ok()) return send_error(res, id.error());
           if (auto r = a->pipeline->dlq_replay(*id, a->actor); !r.ok()) {
             return send_error(res, r.error());
           }
           if (auto rec = app.record_admin(req.matches[1], a->actor, "dlq.replay", id->str(),
                                           std::nullopt, "the event was replayed");
               !rec.ok()) {
             return send_error(res, rec.error());
           }
           send_json(res, 202, {{"replayed", id->str()}});
         });

  // Every dead letter the query's filter takes, in history order; ?dry_run=true only answers
  // which (200), without replaying.
  s.post(R"(/v1/envs/([^/]+)/dlq:replay)", [&app](const http::HttpRequest& req,
                                                  http::HttpResponse& res) {
    auto a = authorize_admin(app, req);
    if (!a.ok()) return send_error(res, a.error());
    auto filter = query_filter(req);
    if (!filter.ok()) return send_error(res, filter.error());
    const std::string dry = req.has_param("dry_run") ? req.param("dry_run") : "false";
    if (dry != "true" && dry != "false") {
      return send_error(res,
                        make_error(Errc::kInvalidArgument, "must be true or false", "dry_run"));
    }
    auto done = a->pipeline->dlq_replay_all(*filter, dry == "true", a->actor);
    if (!done.ok()) return send_error(res, done.error());
    if (dry == "true") {
      return send_entries(res, 200, "\"dry_run\":true,", *done, 0, done->size());
    }
    if (auto rec = app.record_admin(req.matches[1], a->actor, "dlq.replay_all", req.matches[1],
                                    "{\"replayed\":" + std::to_string(done->size()) + "}",
                                    "the dead letters were replayed");
        !rec.ok()) {
      return send_error(res, rec.error());
    }
    send_entries(res, 202, "\"dry_run\":false,", *done, 0, done->size());
  });

  s.post(R"(/v1/envs/([^/]+)/dlq/([^/:]+):resolve)", [&app](const http::HttpRequest& req,
                                                            http::HttpResponse& res) {
    auto a = authorize_admin(app, req);
    if (!a.ok()) return send_error(res, a.error());
    auto id = path_event_id(req);
    if (!id.ok()) return send_error(res, id.error());
    if (auto json = require_json(req); !json.ok()) return send_error(res, json.error());
    auto body = parse_body(req);
    if (!body.ok()) return send_error(res, body.error());
    const auto how =
        body->is_object() ? body->value("resolution", nlohmann::json()) : nlohmann::json();
    if (how != "accept" && how != "discard") {
      return send_error(res, make_error(Errc::kInvalidArgument, "must be \"accept\" or \"discard\"",
                                        "resolution"));
    }
    std::string note;
    if (body->contains("note")) {
      if (!(*body)["note"].is_string() || (*body)["note"].get<std::string>().size() > 500) {
        return send_error(res, make_error(Errc::kInvalidArgument,
                                          "must be a string of at most 500 bytes", "note"));
      }
      note = (*body)["note"].get<std::string>();
    }
    using R = pipeline::EnvironmentPipeline::DlqResolution;
    const bool accept = how == "accept";
    if (auto r = a->pipeline->dlq_resolve(*id, accept ? R::kAccept : R::kDiscard, a->actor, note);
        !r.ok()) {
      return send_error(res, r.error());
    }
    if (auto rec = app.record_admin(req.matches[1], a->actor, accept ? "dlq.accept" : "dlq.discard",
                                    id->str(), nlohmann::json{{"note", note}}.dump(),
                                    "the dead letter was resolved");
        !rec.ok()) {
      return send_error(res, rec.error());
    }
    send_json(res, 202, {{"resolved", id->str()}, {"resolution", how}});
  });

  s.get(R"(/v1/envs/([^/]+)/poison)",
        [&app](const http::HttpRequest& req, http::HttpResponse& res) {
          auto p = authorize(app, req, req.matches[1], auth::Permission::kRead);
          if (!p.ok()) return send_error(res, p.error());
          // Poison may be any bytes: what is not UTF-8 is shown as U+FFFD.
          auto text = [](const auto& v) {
            return nlohmann::json::parse(
                nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
          };
          nlohmann::json out = nlohmann::json::array();
          for (const pipeline::PoisonLetter& l : (*p)->dlq_poison()) {
            out.push_back({{"message_id", text(l.message_id)},
                           {"data", text(l.data)},
                           {"attributes", text(l.attributes)},
                           {"published_at", l.published_at.to_rfc3339()},
                           {"reason", text(l.reason)}});
          }
          send_json(res, 200, {{"poison", out}});
        });

  // Discards a poison message: the inspector acks it at its next delivery (within
  // DlqInspector::kRecheckUs), on whichever process it reaches.
  s.post(R"(/v1/envs/([^/]+)/poison/([^/:]+):discard)",
         [&app](const http::HttpRequest& req, http::HttpResponse& res) {
           auto a = authorize_admin(app, req);
           if (!a.ok()) return send_error(res, a.error());
           const std::string id = req.matches[2];
           const auto held = a->pipeline->dlq_poison();
           if (std::none_of(held.begin(), held.end(),
                            [&](const pipeline::PoisonLetter& l) { return l.message_id == id; })) {
             return send_error(res, make_error(Errc::kNotFound, "no poison message \"" + id +
                                                                    "\" is held by this process"));
           }
           if (auto rec = app.record_admin(req.matches[1], a->actor,
                                           pipeline::DlqInspector::kDiscardPoison, id, std::nullopt,
                                           "nothing: the poison message stays");
               !rec.ok()) {
             return send_error(res, rec.error());
           }
           send_json(res, 202, {{"discarded", id}});
         });
}

}  // namespace backbone::server
