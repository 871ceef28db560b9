// backbone.toml and topology.toml: any bytes give a config or a clear error naming the source.
#include "backbone/config.h"
#include "backbone/topology.h"
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace backbone;
  const std::string_view in = fuzz::text(data, size);
  auto config = parse_config(in, "fuzz.toml");
  if (!config.ok()) BACKBONE_FUZZ_CHECK(!config.error().message.empty());
  auto topology = Topology::parse(in, "fuzz-topology.toml");
  if (!topology.ok()) BACKBONE_FUZZ_CHECK(!topology.error().message.empty());
  return 0;
}
