// The `nats://` broker URL:
//
//   nats://[user:password@]host:port[,host:port…][?namespace=N&replicas=R&dup_window_ms=D
//                                                 &inbox_prefix=P&reader_buffer=B]
//
//  - host:port…   the servers of one NATS cluster (any of them will do; the client follows the
//                 cluster);
//  - user:password  a NATS user (percent-encoded); without, an anonymous connection;
//  - namespace    prefixes every stream, subject and bucket that the backend makes, so that
//                 several brokers share one NATS account (default "backbone"; [A-Za-z0-9-]+,
//                 at most 32 bytes);
//  - replicas     the replicas of every stream and bucket it creates, 1 to 5 (default 1; a
//                 3-node cluster wants 3);
//  - dup_window_ms  how long JetStream remembers a message id to drop a re-sent publish
//                 (default 120000);
//  - inbox_prefix  the subject prefix of the replies this client receives (default "_INBOX");
//                 a user restricted to one environment gets its own, so that it can subscribe
//                 to its replies and to nothing else (nats_permissions.h);
//  - reader_buffer  how many pushed messages a topic reader holds before libnats drops the
//                 next ones (default 65536; the reader then reads again from the first one
//                 dropped).
//
// Thread-safety: plain values and functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backbone/result.h"

namespace backbone::nats {

struct NatsUrl {
  std::vector<std::string> servers;  // "nats://host:port" each
  std::string user, password;
  std::string ns = "backbone";
  int replicas = 1;
  int64_t dup_window_ms = 120'000;
  std::string inbox_prefix = "_INBOX";
  int64_t reader_buffer = 65'536;
};

Result<NatsUrl> parse_nats_url(std::string_view url);
// The URL without its password.
std::string redact_nats_url(std::string_view url);

}  // namespace backbone::nats
