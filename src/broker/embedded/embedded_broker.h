// The embedded backend of the Broker port (`embedded:///path`): the single-machine default.
//
//   path/LOCK                  flock'd by the one process that has the broker open
//   path/catalog.json          topics and subscriptions (catalog.h)
//   path/topics/<id>/*.seg     each topic's messages (segment_log.h)
//   path/state.journal         the subscriptions' delivery state (state_journal.h)
//
// Publishes, delivery attempts and acks are buffered under one mutex and made durable by a
// flusher thread: it writes what has accumulated, fdatasyncs each file once, and wakes every
// caller whose work was in that batch (group commit). A burst of concurrent calls so shares one
// fsync. Messages become visible to subscriptions only once durable. A batch that cannot be
// written (a full disk) fails its callers with kUnavailable and is kept and written again, so
// the broker resumes by itself once there is space (doc/broker_log_format.md, "A full disk").
//
// URL options (query string): segment_bytes (default 64 MiB), checkpoint_bytes (journal size
// that triggers a checkpoint; default 64 MiB).
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>
#include <string>

#include "backbone/broker.h"

namespace backbone::embedded {

struct EmbeddedOptions {
  std::string dir;
  const Clock* clock = nullptr;
  uint64_t segment_bytes = 64ull << 20;
  uint64_t checkpoint_bytes = 64ull << 20;
};

// Parses "embedded://path[?segment_bytes=N&checkpoint_bytes=N]".
Result<EmbeddedOptions> parse_embedded_url(std::string_view url);

Result<std::unique_ptr<Broker>> open_embedded_broker(const EmbeddedOptions& options);

}  // namespace backbone::embedded
