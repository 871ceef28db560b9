#include "broker/schema/schema_check.h"

namespace backbone::schema {

Error invalid_schema(std::string reason) {
  return make_error(Errc::kInvalidArgument, std::move(reason), "schema");
}

Result<std::shared_ptr<const CompiledSchema>> compile_schema(SchemaType type,
                                                             std::string_view definition) {
  if (definition.empty()) {
    return invalid_schema("the definition is empty");
  }
  return type == SchemaType::kAvro ? compile_avro(definition) : compile_protobuf(definition);
}

}  // namespace backbone::schema
