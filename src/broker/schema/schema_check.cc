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

const char* schema_type_name(SchemaType type) {
  return type == SchemaType::kAvro ? "AVRO" : "PROTOCOL_BUFFER";
}

const char* schema_encoding_name(SchemaEncoding encoding) {
  return encoding == SchemaEncoding::kJson ? "JSON" : "BINARY";
}

std::optional<SchemaType> schema_type_from_name(std::string_view name) {
  if (name == "AVRO") return SchemaType::kAvro;
  if (name == "PROTOCOL_BUFFER") return SchemaType::kProtocolBuffer;
  return std::nullopt;
}

std::optional<SchemaEncoding> schema_encoding_from_name(std::string_view name) {
  if (name == "JSON") return SchemaEncoding::kJson;
  if (name == "BINARY") return SchemaEncoding::kBinary;
  return std::nullopt;
}

}  // namespace backbone::schema
