// Protocol-buffer schemas: a .proto file of one top-level message, compiled into a descriptor
// pool of its own; messages checked with a dynamic message of that type.
#include <google/protobuf/compiler/parser.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>

#include "broker/schema/schema_check.h"

namespace backbone::schema {
namespace {

namespace pb = google::protobuf;

// The first error of the tokenizer, the parser or the pool.
class FirstError final : public pb::io::ErrorCollector, public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    note("line " + std::to_string(line + 1) + ", column " + std::to_string(column + 1) + ": " +
         message);
  }
  void AddError(const std::string&, const std::string& element, const pb::Message*, ErrorLocation,
                const std::string& message) override {
    note(element.empty() ? message : element + ": " + message);
  }
  const std::string& text() const { return text_; }

 private:
  void note(std::string m) {
    if (text_.empty()) text_ = std::move(m);
  }
  std::string text_;
};

class ProtobufSchema final : public CompiledSchema {
 public:
  ProtobufSchema(std::unique_ptr<pb::DescriptorPool> pool, const pb::Descriptor* type)
      : pool_(std::move(pool)), factory_(pool_.get()), prototype_(factory_.GetPrototype(type)) {}

  Result<void> check(SchemaEncoding encoding, std::string_view data) const override {
    // Protobuf logs an ERROR for each proto3 string that is not UTF-8 (and refuses the message):
    // messages come from clients, and the refusal says enough.
    const pb::LogSilencer quiet;
    std::unique_ptr<pb::Message> m(prototype_->New());
    if (encoding == SchemaEncoding::kBinary) {
      if (data.size() > static_cast<size_t>(INT32_MAX) ||
          !m->ParsePartialFromArray(data.data(), static_cast<int>(data.size()))) {
        return invalid_schema("the message is not a " + prototype_->GetTypeName() +
                              " in the binary encoding");
      }
    } else {
      pb::util::JsonParseOptions options;
      options.ignore_unknown_fields = false;
      auto status = pb::util::JsonStringToMessage(pb::StringPiece(data.data(), data.size()),
                                                  m.get(), options);
      if (!status.ok()) {
        return invalid_schema("the message is not a " + prototype_->GetTypeName() +
                              " in JSON: " + std::string(status.message()));
      }
    }
    if (!m->IsInitialized()) {
      return invalid_schema("the message lacks required fields: " + m->InitializationErrorString());
    }
    return {};
  }

 private:
  std::unique_ptr<pb::DescriptorPool> pool_;
  pb::DynamicMessageFactory factory_;
  const pb::Message* prototype_;  // owned by factory_
};

}  // namespace

Result<std::shared_ptr<const CompiledSchema>> compile_protobuf(std::string_view definition) {
  FirstError errors;
  pb::io::ArrayInputStream input(definition.data(), static_cast<int>(definition.size()));
  pb::io::Tokenizer tokenizer(&input, &errors);
  pb::compiler::Parser parser;
  parser.RecordErrorsTo(&errors);
  pb::FileDescriptorProto file;
  if (!parser.Parse(&tokenizer, &file) || !errors.text().empty()) {
    return invalid_schema("not a protocol-buffer schema: " + errors.text());
  }
  if (file.dependency_size() > 0) {
    return invalid_schema("a protocol-buffer schema may not import (it imports " +
                          file.dependency(0) + ")");
  }
  if (file.message_type_size() != 1) {
    return invalid_schema(
        "a protocol-buffer schema defines exactly one top-level message; this one "
        "defines " +
        std::to_string(file.message_type_size()));
  }
  file.set_name("schema.proto");
  auto pool = std::make_unique<pb::DescriptorPool>();
  const pb::FileDescriptor* built = pool->BuildFileCollectingErrors(file, &errors);
  if (!built) return invalid_schema("not a protocol-buffer schema: " + errors.text());
  const pb::Descriptor* type = built->message_type(0);
  return std::shared_ptr<const CompiledSchema>(
      std::make_shared<ProtobufSchema>(std::move(pool), type));
}

}  // namespace backbone::schema
