// Schemas (src/broker/schema): a definition and a message from outside. The first byte picks
// Avro or protocol buffers; the rest is the definition, then a NUL, then the message. A
// definition compiles or is refused with a reason; a compiled one checks the message in JSON and
// in binary, each an answer or a refusal with a reason, never a crash, and the same answer twice.
#include "broker/schema/schema_check.h"
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace backbone;
  if (size == 0) return 0;
  const SchemaType type = (data[0] & 1) ? SchemaType::kProtocolBuffer : SchemaType::kAvro;
  const std::string_view rest = fuzz::text(data + 1, size - 1);
  const size_t nul = rest.find('\0');
  const std::string_view definition = rest.substr(0, nul);
  const std::string_view message =
      nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  auto schema = schema::compile_schema(type, definition);
  if (!schema.ok()) {
    BACKBONE_FUZZ_CHECK(schema.code() == Errc::kInvalidArgument && !schema.error().message.empty());
    return 0;
  }
  for (SchemaEncoding e : {SchemaEncoding::kJson, SchemaEncoding::kBinary}) {
    auto first = (*schema)->check(e, message);
    if (!first.ok()) {
      BACKBONE_FUZZ_CHECK(first.code() == Errc::kInvalidArgument && !first.error().message.empty());
    }
    BACKBONE_FUZZ_CHECK((*schema)->check(e, message).ok() == first.ok());
  }
  return 0;
}
