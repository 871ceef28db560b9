#include "backbone/event_json.h"

#include "backbone/canonical_json.h"
#include "core/json_internal.h"

namespace backbone {
namespace {

using nlohmann::json;

Error wrong_type(const char* field, const char* want, const json& got) {
  return make_error(Errc::kInvalidArgument,
                    std::string("must be ") + want + ", got " + json_internal::type_phrase(got),
                    field);
}

Result<std::string> required_string(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end()) return make_error(Errc::kInvalidArgument, "is required", field);
  if (!it->is_string()) return wrong_type(field, "a string", *it);
  return it->get<std::string>();
}

}  // namespace

Result<EventDraft> parse_event_draft(std::string_view text) {
  auto parsed = json_internal::parse_strict(text);
  if (!parsed.ok()) return parsed.error();
  return json_internal::event_draft_from_json(*parsed);
}

Result<EventDraft> json_internal::event_draft_from_json(const json& obj) {
  if (!obj.is_object()) {
    return make_error(Errc::kInvalidArgument, std::string("an event must be a JSON object, got ") +
                                                  json_internal::type_phrase(obj));
  }
  static constexpr std::string_view kKnown[] = {"id",      "record_type",      "record_id",
                                                "source",  "timestamp",        "base_version",
                                                "changes", "full_snapshot_ref"};
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (auto k : kKnown) known = known || it.key() == k;
    if (!known) return make_error(Errc::kInvalidArgument, "unknown field", it.key());
  }

  EventDraft d;
  if (auto it = obj.find("id"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return wrong_type("id", "a UUIDv7 string", *it);
    auto id = EventId::parse(it->get_ref<const std::string&>());
    if (!id.ok()) return make_error(Errc::kInvalidArgument, id.error().message, "id");
    d.id = *id;
  }
  auto record_type = required_string(obj, "record_type");
  if (!record_type.ok()) return record_type.error();
  d.record_type = std::move(*record_type);
  auto record_id = required_string(obj, "record_id");
  if (!record_id.ok()) return record_id.error();
  d.record_id = std::move(*record_id);
  auto source = required_string(obj, "source");
  if (!source.ok()) return source.error();
  d.source = std::move(*source);

  if (auto it = obj.find("timestamp"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return wrong_type("timestamp", "an RFC 3339 string", *it);
    auto ts = Timestamp::parse_rfc3339(it->get_ref<const std::string&>());
    if (!ts.ok()) return make_error(Errc::kInvalidArgument, ts.error().message, "timestamp");
    d.timestamp = *ts;
  }

  auto bv = obj.find("base_version");
  if (bv == obj.end()) return make_error(Errc::kInvalidArgument, "is required", "base_version");
  if (bv->is_number_unsigned()) {
    d.base_version = bv->get<uint64_t>();
  } else if (bv->is_number_integer()) {
    return make_error(Errc::kInvalidArgument, "must be a non-negative integer", "base_version");
  } else {
    return wrong_type("base_version", "a non-negative integer", *bv);
  }

  auto ch = obj.find("changes");
  if (ch == obj.end()) return make_error(Errc::kInvalidArgument, "is required", "changes");
  if (!ch->is_object()) return wrong_type("changes", "a JSON object", *ch);
  d.changes = ch->dump();

  if (auto it = obj.find("full_snapshot_ref"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return wrong_type("full_snapshot_ref", "a string or null", *it);
    d.full_snapshot_ref = it->get<std::string>();
  }
  return d;
}

std::string event_to_json(const Event& e, std::optional<bool> processed) {
  std::string out;
  out.reserve(e.changes().size() + 320);
  out += "{\"id\":\"" + e.id().str() + "\",\"record_type\":";
  append_canonical_string(out, e.record_type());
  out += ",\"record_id\":";
  append_canonical_string(out, e.record_id());
  out += ",\"source\":";
  append_canonical_string(out, e.source());
  out += ",\"timestamp\":\"" + e.timestamp().to_rfc3339() + "\"";
  out += ",\"base_version\":" + std::to_string(e.base_version());
  out += ",\"changes\":" + e.changes();
  out += ",\"full_snapshot_ref\":";
  if (e.full_snapshot_ref()) {
    append_canonical_string(out, *e.full_snapshot_ref());
  } else {
    out += "null";
  }
  out += ",\"fingerprint\":\"" + e.fingerprint() + "\"";
  if (processed) out += std::string(",\"processed\":") + (*processed ? "true" : "false");
  out += "}";
  return out;
}

std::string audit_entry_to_json(const AuditEntry& a) {
  std::string out;
  out.reserve(a.detail.value_or("").size() + 400);
  out += "{\"id\":\"" + a.id.str() + "\",\"event_id\":\"" + a.event_id.str() + "\"";
  out += ",\"record_type\":";
  append_canonical_string(out, a.record.record_type);
  out += ",\"record_id\":";
  append_canonical_string(out, a.record.record_id);
  out += std::string(",\"action\":\"") + audit_action_name(a.action) + "\"";
  out += ",\"fingerprint\":\"" + a.fingerprint + "\",\"chain_hash\":\"" + a.chain_hash + "\"";
  out += ",\"detail\":" + (a.detail ? *a.detail : std::string("null"));
  out += ",\"created_at\":\"" + a.created_at.to_rfc3339() + "\"}";
  return out;
}

}  // namespace backbone
