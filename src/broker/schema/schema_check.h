// Schema checks (Pub/Sub's schemas): whether a definition is a valid Avro or protocol-buffer
// schema, and whether a message's data matches one, in its JSON or its binary encoding.
//
//  - Avro: the definition is checked by Apache Avro's C library (libavro). A message is checked
//    by walking the schema over the data: Avro's JSON encoding (a union as null or as
//    {"<branch>": value}, bytes and fixed as strings of code points below 256, a record's
//    missing field only where it has a default; fields it does not declare are ignored, as
//    Google's emulator does) or its binary
//    encoding (every byte read, no length beyond the data). libavro has no JSON decoder, and its
//    binary reader allocates the length a message declares before reading it.
//  - Protocol buffers: the definition is a .proto file with exactly one top-level message (and
//    no imports), compiled by protobuf's parser into a descriptor pool of its own. A message is
//    checked with a dynamic message of that type: the binary wire format, or protobuf's JSON
//    mapping (unknown fields refused).
//
// Every failure is kInvalidArgument with the reason.
//
// Thread-safety: a CompiledSchema is immutable and may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backbone/broker.h"

namespace backbone::schema {

class CompiledSchema {
 public:
  virtual ~CompiledSchema() = default;
  // Whether `data` is a message of this schema in `encoding`.
  virtual Result<void> check(SchemaEncoding encoding, std::string_view data) const = 0;
};

// Compiles a definition (kInvalidArgument with the parser's reason when it is not one).
Result<std::shared_ptr<const CompiledSchema>> compile_schema(SchemaType type,
                                                             std::string_view definition);

// kInvalidArgument with `reason`, at "schema".
Error invalid_schema(std::string reason);

// The two kinds, each in its own file.
Result<std::shared_ptr<const CompiledSchema>> compile_avro(std::string_view definition);
Result<std::shared_ptr<const CompiledSchema>> compile_protobuf(std::string_view definition);

}  // namespace backbone::schema
