// The google.pubsub.v1 SchemaService of the Pub/Sub front, on the Broker port's schemas:
// create, get, list, commit a revision, roll back to one, delete a revision or a schema, and
// validate a schema or a message (with the checks of src/broker/schema). Each environment has
// its own schema names (FrontAccess::stored_schema). "read" gets, lists and validates; "admin"
// changes. A name may carry a revision: "projects/P/schemas/S@<revision id>".
//
// Thread-safety: thread-safe; gRPC calls it from many threads.
#pragma once

#include "google/pubsub/v1/schema.grpc.pb.h"
#include "pubsub/front/front_access.h"

namespace backbone::pubsub {

class SchemaService final : public google::pubsub::v1::SchemaService::Service {
 public:
  explicit SchemaService(const FrontAccess& access) : a_(access) {}

  grpc::Status CreateSchema(grpc::ServerContext* ctx,
                            const google::pubsub::v1::CreateSchemaRequest* req,
                            google::pubsub::v1::Schema* resp) override;
  grpc::Status GetSchema(grpc::ServerContext* ctx, const google::pubsub::v1::GetSchemaRequest* req,
                         google::pubsub::v1::Schema* resp) override;
  grpc::Status ListSchemas(grpc::ServerContext* ctx,
                           const google::pubsub::v1::ListSchemasRequest* req,
                           google::pubsub::v1::ListSchemasResponse* resp) override;
  grpc::Status ListSchemaRevisions(grpc::ServerContext* ctx,
                                   const google::pubsub::v1::ListSchemaRevisionsRequest* req,
                                   google::pubsub::v1::ListSchemaRevisionsResponse* resp) override;
  grpc::Status CommitSchema(grpc::ServerContext* ctx,
                            const google::pubsub::v1::CommitSchemaRequest* req,
                            google::pubsub::v1::Schema* resp) override;
  grpc::Status RollbackSchema(grpc::ServerContext* ctx,
                              const google::pubsub::v1::RollbackSchemaRequest* req,
                              google::pubsub::v1::Schema* resp) override;
  grpc::Status DeleteSchemaRevision(grpc::ServerContext* ctx,
                                    const google::pubsub::v1::DeleteSchemaRevisionRequest* req,
                                    google::pubsub::v1::Schema* resp) override;
  grpc::Status DeleteSchema(grpc::ServerContext* ctx,
                            const google::pubsub::v1::DeleteSchemaRequest* req,
                            google::protobuf::Empty* resp) override;
  grpc::Status ValidateSchema(grpc::ServerContext* ctx,
                              const google::pubsub::v1::ValidateSchemaRequest* req,
                              google::pubsub::v1::ValidateSchemaResponse* resp) override;
  grpc::Status ValidateMessage(grpc::ServerContext* ctx,
                               const google::pubsub::v1::ValidateMessageRequest* req,
                               google::pubsub::v1::ValidateMessageResponse* resp) override;

 private:
  const FrontAccess& a_;
};

}  // namespace backbone::pubsub
