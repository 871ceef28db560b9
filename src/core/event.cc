#include "backbone/event.h"

#include "backbone/canonical_json.h"
#include "backbone/sha256.h"
#include "core/json_internal.h"

namespace backbone {
namespace {

// Decodes one UTF-8 sequence at s[i]; returns its code point and advances i, or returns
// 0xFFFFFFFF for an invalid sequence (overlong, surrogate, out of range, truncated).
uint32_t decode_utf8(std::string_view s, size_t& i) {
  const auto c0 = static_cast<unsigned char>(s[i]);
  if (c0 < 0x80) {
    ++i;
    return c0;
  }
  int len;
  uint32_t cp, min;
  if ((c0 & 0xE0) == 0xC0) {
    len = 2, cp = c0 & 0x1F, min = 0x80;
  } else if ((c0 & 0xF0) == 0xE0) {
    len = 3, cp = c0 & 0x0F, min = 0x800;
  } else if ((c0 & 0xF8) == 0xF0) {
    len = 4, cp = c0 & 0x07, min = 0x10000;
  } else {
    return 0xFFFFFFFF;
  }
  if (i + len > s.size()) return 0xFFFFFFFF;
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0xFFFFFFFF;
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xFFFFFFFF;
  i += len;
  return cp;
}

Error invalid(const char* field, std::string msg) {
  return make_error(Errc::kInvalidArgument, std::move(msg), field);
}

bool valid_snapshot_ref(std::string_view ref) {
  static constexpr std::string_view kSchemes[] = {"gs://", "s3://", "file://", "https://"};
  bool scheme = false;
  for (auto s : kSchemes) {
    if (ref.starts_with(s) && ref.size() > s.size()) scheme = true;
  }
  if (!scheme) return false;
  for (char ch : ref) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return false;  // URIs carry no spaces or controls
  }
  return true;
}
}  // namespace

Result<void> Event::fill_validated(const EventDraft& d) {
  if (!is_valid_name(d.record_type)) {
    return invalid("record_type", "must match [a-z][a-z0-9_.-]{0,63}, got \"" +
                                      d.record_type.substr(0, 80) + "\"");
  }
  if (d.record_id.empty()) return invalid("record_id", "must not be empty");
  if (d.record_id.size() > kMaxRecordIdBytes) {
    return make_error(Errc::kTooLarge,
                      "is " + std::to_string(d.record_id.size()) + " bytes; at most 191 allowed",
                      "record_id");
  }
  if (!is_valid_record_id(d.record_id)) {
    return invalid("record_id", "must be printable UTF-8 (no control characters)");
  }
  if (!is_valid_name(d.source)) {
    return invalid("source",
                   "must match [a-z][a-z0-9_.-]{0,63}, got \"" + d.source.substr(0, 80) + "\"");
  }
  if (d.base_version > kMaxBaseVersion) {
    return invalid("base_version", "must be at most 2^53-1");
  }
  if (d.changes.size() > 4 * kMaxChangesBytes) {  // do not even parse grossly oversized input
    return make_error(Errc::kTooLarge, "is over the 256 KiB limit", "changes");
  }
  auto parsed = json_internal::parse_strict(d.changes);
  if (!parsed.ok()) return invalid("changes", parsed.error().message);
  if (!parsed->is_object()) {
    return invalid("changes", std::string("must be a JSON object, got ") +
                                  json_internal::type_phrase(*parsed));
  }
  std::string canonical;
  canonical.reserve(d.changes.size());
  if (auto w = json_internal::write_canonical(*parsed, canonical); !w.ok()) {
    const std::string& sub = w.error().where;
    return make_error(w.error().code, w.error().message,
                      sub.empty() ? "changes" : "changes." + sub);
  }
  if (canonical.size() > kMaxChangesBytes) {
    return make_error(Errc::kTooLarge,
                      "is " + std::to_string(canonical.size()) +
                          " bytes in canonical form; at most 262144 (256 KiB) allowed",
                      "changes");
  }
  if (d.full_snapshot_ref) {
    if (d.full_snapshot_ref->size() > kMaxSnapshotRefBytes) {
      return make_error(Errc::kTooLarge, "is over 512 bytes", "full_snapshot_ref");
    }
    if (!valid_snapshot_ref(*d.full_snapshot_ref)) {
      return invalid("full_snapshot_ref",
                     "must be a gs://, s3://, file:// or https:// URI without spaces");
    }
  }
  record_type_ = d.record_type;
  record_id_ = d.record_id;
  source_ = d.source;
  base_version_ = d.base_version;
  changes_ = std::move(canonical);
  full_snapshot_ref_ = d.full_snapshot_ref;
  fingerprint_ = event_fingerprint(record_type_, record_id_, source_, base_version_, changes_);
  return {};
}

bool is_valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes || s[0] < 'a' || s[0] > 'z') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

bool is_valid_record_id(std::string_view s) {
  if (s.empty() || s.size() > kMaxRecordIdBytes) return false;
  for (size_t i = 0; i < s.size();) {
    const uint32_t cp = decode_utf8(s, i);
    if (cp == 0xFFFFFFFF || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return false;
  }
  return true;
}

std::string event_fingerprint(const std::string& record_type, const std::string& record_id,
                              const std::string& source, uint64_t base_version,
                              const std::string& canonical_changes) {
  // The canonical JSON of the object, written directly: its keys in RFC 8785 order are
  // base_version < changes < record_id < record_type < source.
  std::string doc;
  doc.reserve(canonical_changes.size() + record_id.size() + 96);
  doc += "{\"base_version\":";
  doc += std::to_string(base_version);  // an integer below 2^53 prints the same in ECMAScript
  doc += ",\"changes\":";
  doc += canonical_changes;
  doc += ",\"record_id\":";
  append_canonical_string(doc, record_id);
  doc += ",\"record_type\":";
  append_canonical_string(doc, record_type);
  doc += ",\"source\":";
  append_canonical_string(doc, source);
  doc += "}";
  return sha256_hex(doc);
}

Result<Event> Event::create(const EventDraft& draft, EventIdGenerator& ids, const Clock& clock) {
  Event e;
  BACKBONE_TRY(e.fill_validated(draft));
  // A new event must change something: `{}` would make a version equal to the last one. (A
  // stored one is restored as it is.)
  if (e.changes_ == "{}") return invalid("changes", "must name at least one field, got {}");
  if (draft.id && draft.id->is_nil()) return invalid("id", "must not be the nil UUID");
  e.id_ = draft.id ? *draft.id : ids.next();
  e.timestamp_ = draft.timestamp ? *draft.timestamp : clock.now();
  return e;
}

Result<Event> Event::restore(const EventDraft& row) {
  if (!row.id || !row.timestamp) {
    return make_error(Errc::kDataLoss, "stored event lacks its id or timestamp");
  }
  Event e;
  if (auto v = e.fill_validated(row); !v.ok()) {
    return make_error(Errc::kDataLoss,
                      "stored event " + row.id->str() + " is invalid: " + v.error().describe());
  }
  e.id_ = *row.id;
  e.timestamp_ = *row.timestamp;
  return e;
}

Result<std::vector<Event>> create_events(std::span<const EventDraft> drafts, EventIdGenerator& ids,
                                         const Clock& clock) {
  std::vector<Event> out;
  out.reserve(drafts.size());
  for (size_t i = 0; i < drafts.size(); ++i) {
    auto e = Event::create(drafts[i], ids, clock);
    if (!e.ok()) {
      return Error(e.error()).at_item("events", i);
    }
    out.push_back(std::move(e).value());
  }
  return out;
}

}  // namespace backbone
