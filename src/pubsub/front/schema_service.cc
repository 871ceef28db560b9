#include "pubsub/front/schema_service.h"

#include "broker/schema/schema_check.h"
#include "pubsub/front/front_paging.h"
#include "pubsub/pubsub_convert.h"
#include "pubsub/pubsub_names.h"

namespace backbone::pubsub {
namespace {

using auth::Permission;

// A schema named in a request: the caller's id, the name kept in the broker, and the revision
// after '@' (empty: none).
struct Named {
  std::string id;
  std::string stored;
  std::string revision;
};

Result<Named> named(const FrontAccess& a, const auth::Principal& who, std::string_view path,
                    const char* field) {
  std::string revision;
  if (const size_t at = path.find('@'); at != std::string_view::npos) {
    revision = std::string(path.substr(at + 1));
    path = path.substr(0, at);
    if (revision.empty()) return make_error(Errc::kInvalidArgument, "names no revision", field);
  }
  auto id = parse_resource_path(path, a.project(), ResourceKind::kSchema, field);
  if (!id.ok()) return id.error();
  return Named{*id, a.stored_schema(who, *id), revision};
}

// A revision as the caller sees it, under its own name.
void show(const FrontAccess& a, const std::string& id, SchemaConfig s, bool full, v1::Schema* out) {
  s.name = id;
  schema_to_proto(s, a.project(), full, out);
}

bool full_view(v1::SchemaView view) { return view == v1::FULL; }

// The type and definition of a schema in a request.
Result<SchemaConfig> definition_of(const v1::Schema& s, std::string name) {
  auto type = schema_type_of(s.type());
  if (!type.ok()) return type.error();
  SchemaConfig out;
  out.name = std::move(name);
  out.type = *type;
  out.definition = s.definition();
  return out;
}

}  // namespace

grpc::Status SchemaService::CreateSchema(grpc::ServerContext* ctx,
                                         const v1::CreateSchemaRequest* req, v1::Schema* resp) {
  auto who = a_.authorize(*ctx, Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  if (auto p = check_project_path(req->parent(), a_.project(), "parent"); !p.ok()) {
    return to_status(p.error());
  }
  std::string id = req->schema_id();
  if (id.empty() && !req->schema().name().empty()) {
    auto n = named(a_, *who, req->schema().name(), "schema.name");
    if (!n.ok()) return to_status(n.error());
    id = n->id;
  }
  if (auto v = validate_resource_name(id, "schema_id"); !v.ok()) return to_status(v.error());
  auto config = definition_of(req->schema(), a_.stored_schema(*who, id));
  if (!config.ok()) return to_status(config.error());
  auto made = a_.broker().create_schema(*config);
  if (!made.ok()) return to_status(made.error());
  show(a_, id, *made, true, resp);
  return grpc::Status::OK;
}

grpc::Status SchemaService::GetSchema(grpc::ServerContext* ctx, const v1::GetSchemaRequest* req,
                                      v1::Schema* resp) {
  auto who = a_.authorize(*ctx, Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  auto n = named(a_, *who, req->name(), "name");
  if (!n.ok()) return to_status(n.error());
  auto s = a_.broker().get_schema(n->stored, n->revision);
  if (!s.ok()) return to_status(s.error());
  show(a_, n->id, *s, full_view(req->view()), resp);
  return grpc::Status::OK;
}

grpc::Status SchemaService::ListSchemas(grpc::ServerContext* ctx, const v1::ListSchemasRequest* req,
                                        v1::ListSchemasResponse* resp) {
  auto who = a_.authorize(*ctx, Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  if (auto p = check_project_path(req->parent(), a_.project(), "parent"); !p.ok()) {
    return to_status(p.error());
  }
  auto all = a_.broker().list_schemas();
  if (!all.ok()) return to_status(all.error());
  std::vector<SchemaConfig> mine;  // under the caller's names
  for (SchemaConfig& s : *all) {
    if (auto id = a_.caller_schema(*who, s.name)) {
      s.name = *id;
      mine.push_back(std::move(s));
    }
  }
  auto page = page_of(
      mine, [](const SchemaConfig&) { return true; }, req->page_size(), req->page_token());
  if (!page.ok()) return to_status(page.error());
  for (const SchemaConfig* s : page->items) {
    show(a_, s->name, *s, full_view(req->view()), resp->add_schemas());
  }
  resp->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

grpc::Status SchemaService::ListSchemaRevisions(grpc::ServerContext* ctx,
                                                const v1::ListSchemaRevisionsRequest* req,
                                                v1::ListSchemaRevisionsResponse* resp) {
  auto who = a_.authorize(*ctx, Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  auto n = named(a_, *who, req->name(), "name");
  if (!n.ok()) return to_status(n.error());
  auto all = a_.broker().list_schema_revisions(n->stored);
  if (!all.ok()) return to_status(all.error());
  // Newest first; the page token is the revision id that the next page starts at.
  if (req->page_size() < 0) {
    return to_status(make_error(Errc::kInvalidArgument, "must not be negative", "page_size"));
  }
  const size_t size = req->page_size() == 0 ? 100 : std::min(req->page_size(), 1000);
  size_t from = 0;
  if (!req->page_token().empty()) {
    while (from < all->size() && (*all)[from].revision_id != req->page_token()) ++from;
    if (from == all->size()) {
      return to_status(make_error(Errc::kInvalidArgument, "names no revision", "page_token"));
    }
  }
  for (size_t i = from; i < all->size() && i < from + size; ++i) {
    show(a_, n->id, (*all)[i], full_view(req->view()), resp->add_schemas());
  }
  if (from + size < all->size()) resp->set_next_page_token((*all)[from + size].revision_id);
  return grpc::Status::OK;
}

grpc::Status SchemaService::CommitSchema(grpc::ServerContext* ctx,
                                         const v1::CommitSchemaRequest* req, v1::Schema* resp) {
  auto who = a_.authorize(*ctx, Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto n = named(a_, *who, req->name(), "name");
  if (!n.ok()) return to_status(n.error());
  auto config = definition_of(req->schema(), n->stored);
  if (!config.ok()) return to_status(config.error());
  auto made = a_.broker().commit_schema(*config);
  if (!made.ok()) return to_status(made.error());
  show(a_, n->id, *made, true, resp);
  return grpc::Status::OK;
}

grpc::Status SchemaService::RollbackSchema(grpc::ServerContext* ctx,
                                           const v1::RollbackSchemaRequest* req, v1::Schema* resp) {
  auto who = a_.authorize(*ctx, Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto n = named(a_, *who, req->name(), "name");
  if (!n.ok()) return to_status(n.error());
  if (req->revision_id().empty()) {
    return to_status(make_error(Errc::kInvalidArgument, "is required", "revision_id"));
  }
  // A rollback is a new revision with the old one's definition, as on Pub/Sub.
  auto old = a_.broker().get_schema(n->stored, req->revision_id());
  if (!old.ok()) return to_status(old.error());
  auto made = a_.broker().commit_schema(*old);
  if (!made.ok()) return to_status(made.error());
  show(a_, n->id, *made, true, resp);
  return grpc::Status::OK;
}

grpc::Status SchemaService::DeleteSchemaRevision(grpc::ServerContext* ctx,
                                                 const v1::DeleteSchemaRevisionRequest* req,
                                                 v1::Schema* resp) {
  auto who = a_.authorize(*ctx, Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto n = named(a_, *who, req->name(), "name");
  if (!n.ok()) return to_status(n.error());
  const std::string& revision = n->revision;  // the deprecated revision_id field is not read
  if (revision.empty()) {
    return to_status(make_error(Errc::kInvalidArgument, "names no revision (\"S@<id>\")", "name"));
  }
  auto gone = a_.broker().get_schema(n->stored, revision);
  if (!gone.ok()) return to_status(gone.error());
  if (auto r = a_.broker().delete_schema_revision(n->stored, revision); !r.ok()) {
    return to_status(r.error());
  }
  show(a_, n->id, *gone, true, resp);
  return grpc::Status::OK;
}

grpc::Status SchemaService::DeleteSchema(grpc::ServerContext* ctx,
                                         const v1::DeleteSchemaRequest* req,
                                         google::protobuf::Empty*) {
  auto who = a_.authorize(*ctx, Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto n = named(a_, *who, req->name(), "name");
  if (!n.ok()) return to_status(n.error());
  return to_status(a_.broker().delete_schema(n->stored));
}

grpc::Status SchemaService::ValidateSchema(grpc::ServerContext* ctx,
                                           const v1::ValidateSchemaRequest* req,
                                           v1::ValidateSchemaResponse*) {
  auto who = a_.authorize(*ctx, Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  if (auto p = check_project_path(req->parent(), a_.project(), "parent"); !p.ok()) {
    return to_status(p.error());
  }
  auto config = definition_of(req->schema(), "");
  if (!config.ok()) return to_status(config.error());
  auto compiled = schema::compile_schema(config->type, config->definition);
  return compiled.ok() ? grpc::Status::OK : to_status(compiled.error());
}

grpc::Status SchemaService::ValidateMessage(grpc::ServerContext* ctx,
                                            const v1::ValidateMessageRequest* req,
                                            v1::ValidateMessageResponse*) {
  auto who = a_.authorize(*ctx, Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  if (auto p = check_project_path(req->parent(), a_.project(), "parent"); !p.ok()) {
    return to_status(p.error());
  }
  if (req->encoding() != v1::JSON && req->encoding() != v1::BINARY) {
    return to_status(make_error(Errc::kInvalidArgument, "must be JSON or BINARY", "encoding"));
  }
  Result<SchemaConfig> config = make_error(Errc::kInvalidArgument, "names no schema", "name");
  if (req->has_schema()) {
    config = definition_of(req->schema(), "");
  } else if (!req->name().empty()) {
    auto n = named(a_, *who, req->name(), "name");
    if (!n.ok()) return to_status(n.error());
    config = a_.broker().get_schema(n->stored, n->revision);
  }
  if (!config.ok()) return to_status(config.error());
  auto compiled = schema::compile_schema(config->type, config->definition);
  if (!compiled.ok()) return to_status(compiled.error());
  const auto encoding =
      req->encoding() == v1::JSON ? SchemaEncoding::kJson : SchemaEncoding::kBinary;
  return to_status((*compiled)->check(encoding, req->message()));
}

}  // namespace backbone::pubsub
