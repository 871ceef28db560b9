#include "broker/schema/schema_registry.h"

#include <algorithm>
#include <random>

namespace backbone::schema {
namespace {

std::string random_revision_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  uint64_t v = rng();
  std::string out(8, '0');
  for (char& c : out) {
    c = hex[v & 15];
    v >>= 4;
  }
  return out;
}

// Index of a revision in newest-first order; `fallback` for an empty id.
std::optional<size_t> index_of(const SchemaRevisions& revisions, std::string_view id,
                               size_t fallback) {
  if (id.empty()) return fallback;
  for (size_t i = 0; i < revisions.size(); ++i) {
    if (revisions[i].revision_id == id) return i;
  }
  return std::nullopt;
}

}  // namespace

Error no_schema(std::string_view name) {
  return make_error(Errc::kNotFound, "schema " + std::string(name) + " does not exist");
}

Result<SchemaConfig> make_revision(const SchemaConfig& config, const SchemaRevisions& existing,
                                   Timestamp now) {
  BACKBONE_TRY(validate_resource_name(config.name, "schema"));
  if (!existing.empty() && existing.front().type != config.type) {
    return make_error(Errc::kInvalidArgument,
                      "schema " + config.name + " is of type " +
                          std::string(schema_type_name(existing.front().type)) +
                          "; a revision cannot be " + std::string(schema_type_name(config.type)),
                      "type");
  }
  auto compiled = compile_schema(config.type, config.definition);
  if (!compiled.ok()) return compiled.error();
  SchemaConfig out = config;
  do {
    out.revision_id = random_revision_id();
  } while (index_of(existing, out.revision_id, 0) != std::nullopt);
  out.revision_create_time = now;
  return out;
}

Result<SchemaConfig> find_revision(const SchemaRevisions& revisions, std::string_view revision_id) {
  if (revisions.empty()) return no_schema("");
  auto i = index_of(revisions, revision_id, 0);
  if (!i) {
    return make_error(Errc::kNotFound, "schema " + revisions.front().name + " has no revision " +
                                           std::string(revision_id));
  }
  return revisions[*i];
}

Result<void> drop_revision(SchemaRevisions& revisions, std::string_view revision_id) {
  BACKBONE_TRY(find_revision(revisions, revision_id));
  if (revision_id.empty() || revisions.size() == 1) {
    return make_error(Errc::kImmutable, "revision " + std::string(revision_id) +
                                            " is the only one of schema " + revisions.front().name +
                                            "; delete the schema instead");
  }
  std::erase_if(revisions, [&](const SchemaConfig& r) { return r.revision_id == revision_id; });
  return {};
}

Result<void> SchemaGate::check_settings(const TopicSchemaSettings& settings,
                                        const Result<SchemaRevisions>& revisions) {
  BACKBONE_TRY(validate_resource_name(settings.schema, "schema_settings.schema"));
  if (!revisions.ok()) return revisions.error();
  const auto last = index_of(*revisions, settings.last_revision_id, 0);
  const auto first = index_of(*revisions, settings.first_revision_id, revisions->size() - 1);
  if (!last || !first) {
    return make_error(
        Errc::kInvalidArgument,
        "schema " + settings.schema + " has no revision " +
            (last ? settings.first_revision_id : settings.last_revision_id),
        last ? "schema_settings.first_revision_id" : "schema_settings.last_revision_id");
  }
  if (*last > *first) {
    return make_error(Errc::kInvalidArgument, "the first revision is newer than the last",
                      "schema_settings");
  }
  return {};
}

Result<std::shared_ptr<const CompiledSchema>> SchemaGate::compiled(const SchemaConfig& revision) {
  const std::string key = revision.name + "@" + revision.revision_id + "@" +
                          std::to_string(revision.revision_create_time.micros());
  {
    std::lock_guard lk(mu_);
    if (auto it = compiled_.find(key); it != compiled_.end()) return it->second;
  }
  auto c = compile_schema(revision.type, revision.definition);
  if (!c.ok()) return c.error();
  std::lock_guard lk(mu_);
  // Revisions of deleted schemas would stay forever: past the bound, start afresh (the ones in
  // use are compiled again as publishes come).
  if (compiled_.size() >= kMaxCompiled) compiled_.clear();
  return compiled_.emplace(key, *c).first->second;
}

size_t SchemaGate::compiled_count() {
  std::lock_guard lk(mu_);
  return compiled_.size();
}

Result<std::vector<OutgoingMessage>> SchemaGate::admit(const TopicSchemaSettings& settings,
                                                       const Result<SchemaRevisions>& revisions,
                                                       std::span<const OutgoingMessage> messages) {
  auto gone = [&](const std::string& what) {
    return make_error(Errc::kImmutable, "the topic's schema " + what +
                                            " is gone; change the topic's schema settings");
  };
  if (!revisions.ok()) {
    if (revisions.error().code == Errc::kNotFound) return gone(settings.schema);
    return revisions.error();
  }
  const auto last = index_of(*revisions, settings.last_revision_id, 0);
  const auto first = index_of(*revisions, settings.first_revision_id, revisions->size() - 1);
  if (!last) return gone(settings.schema + " revision " + settings.last_revision_id);
  if (!first) return gone(settings.schema + " revision " + settings.first_revision_id);
  std::vector<std::pair<const SchemaConfig*, std::shared_ptr<const CompiledSchema>>> range;
  for (size_t i = *last; i <= *first && i < revisions->size(); ++i) {
    auto c = compiled((*revisions)[i]);
    if (!c.ok()) return c.error();
    range.emplace_back(&(*revisions)[i], *c);
  }
  std::vector<OutgoingMessage> out(messages.begin(), messages.end());
  for (size_t m = 0; m < out.size(); ++m) {
    std::optional<Error> first_reason;
    const SchemaConfig* matched = nullptr;
    for (const auto& [revision, schema] : range) {
      auto r = schema->check(settings.encoding, out[m].data);
      if (r.ok()) {
        matched = revision;
        break;
      }
      if (!first_reason) first_reason = r.error();
    }
    if (!matched) {
      return make_error(Errc::kInvalidArgument,
                        "message " + std::to_string(m) + " does not match schema " +
                            settings.schema + ": " +
                            (first_reason ? first_reason->message : "no revision"),
                        "messages");
    }
    out[m].attributes[std::string(kAttrSchemaRevision)] = matched->revision_id;
    out[m].attributes[std::string(kAttrSchemaEncoding)] =
        std::string(schema_encoding_name(settings.encoding));
  }
  return out;
}

}  // namespace backbone::schema
