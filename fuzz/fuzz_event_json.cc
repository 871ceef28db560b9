// Event JSON and canonical JSON (RFC 8785): any bytes are refused with a Result or accepted;
// canonicalizing twice gives the same text; an accepted draft makes an event or a clear error
// (a draft may hold what only the event refuses: an integer beyond ±(2^53-1) in `changes`, the
// first input of this target's first run), and an event's changes are canonical.
#include "backbone/canonical_json.h"
#include "backbone/clock.h"
#include "backbone/event.h"
#include "backbone/event_json.h"
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace backbone;
  const std::string_view in = fuzz::text(data, size);
  auto canonical = canonicalize_json(in);
  if (canonical.ok()) {
    auto again = canonicalize_json(*canonical);
    BACKBONE_FUZZ_CHECK(again.ok() && *again == *canonical);
  }
  auto draft = parse_event_draft(in);
  if (draft.ok()) {
    static ManualClock clock;
    static EventIdGenerator ids(clock, 1);
    auto event = Event::create(*draft, ids, clock);
    if (event.ok()) {
      auto changes = canonicalize_json(event->changes());
      BACKBONE_FUZZ_CHECK(changes.ok() && *changes == event->changes());
    } else {
      BACKBONE_FUZZ_CHECK(!event.error().message.empty());
    }
  }
  return 0;
}
