// StoredMessage: a published message as a backend keeps it (the embedded broker's segment
// records, the NATS backend's stream messages), and its byte encoding (doc/broker_log_format.md):
//
//   u64 offset, i64 publish time (µs), str ordering key, u32 n, n × (str key, str value), str data
//
// Thread-safety: plain values and functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "backbone/broker.h"

namespace backbone::delivery {

struct StoredMessage {
  uint64_t offset = 0;
  int64_t publish_time_us = 0;
  std::string ordering_key;
  Attributes attributes;
  std::string data;
};

void encode_message(const StoredMessage& m, std::string& payload);
bool decode_message(std::string_view payload, StoredMessage& m);
// The in-memory hash of an ordering key: 0 for the empty key, never 0 otherwise. Not stable
// across builds; never stored.
uint64_t ordering_key_hash(std::string_view key);

}  // namespace backbone::delivery
