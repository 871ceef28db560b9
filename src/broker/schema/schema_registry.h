// The rules of schemas and their revisions, for the backends that keep schemas themselves
// (embedded, NATS; Pub/Sub keeps and checks its own), written once:
//
//  - a schema is its revisions, newest first (SchemaRevisions), never none;
//  - SchemaGate checks what is published to a topic with a schema, and what a topic's schema
//    settings name.
//
// Thread-safety: the functions are pure; SchemaGate is thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "backbone/broker.h"
#include "broker/schema/schema_check.h"

namespace backbone::schema {

using SchemaRevisions = std::vector<SchemaConfig>;

// The revision that `config` makes of a schema with these revisions (none: a new schema): its
// name and definition checked, of the schema's type, with a fresh revision id and `now`.
// kInvalidArgument otherwise.
Result<SchemaConfig> make_revision(const SchemaConfig& config, const SchemaRevisions& existing,
                                   Timestamp now);
// The newest revision, or the one named; kNotFound.
Result<SchemaConfig> find_revision(const SchemaRevisions& revisions, std::string_view revision_id);
// Removes one revision: kNotFound when it is not one, kImmutable when it is the only one.
Result<void> drop_revision(SchemaRevisions& revisions, std::string_view revision_id);
// What asking for a schema that does not exist answers.
Error no_schema(std::string_view name);

class SchemaGate {
 public:
  // Whether `settings` name a schema that exists (`revisions`, as the backend holds them) and
  // revisions of it, the first not newer than the last. kNotFound, kInvalidArgument.
  static Result<void> check_settings(const TopicSchemaSettings& settings,
                                     const Result<SchemaRevisions>& revisions);

  // The messages of a publish to a topic with `settings`, each checked against the revisions
  // in the settings' range, newest first, and given the attributes kAttrSchemaRevision and
  // kAttrSchemaEncoding of the one it matched. kInvalidArgument "message <i>: <reason>" for the
  // first that matches none (the reason is the newest revision's); kImmutable when the schema
  // or a revision the settings name is gone.
  Result<std::vector<OutgoingMessage>> admit(const TopicSchemaSettings& settings,
                                             const Result<SchemaRevisions>& revisions,
                                             std::span<const OutgoingMessage> messages);
  // How many revisions are held compiled (at most kMaxCompiled).
  size_t compiled_count();
  static constexpr size_t kMaxCompiled = 256;

 private:
  Result<std::shared_ptr<const CompiledSchema>> compiled(const SchemaConfig& revision);
  std::mutex mu_;
  // By name, revision id and time; compiled once each while the map is under kMaxCompiled.
  std::map<std::string, std::shared_ptr<const CompiledSchema>> compiled_;  // GUARDED_BY(mu_)
};

}  // namespace backbone::schema
