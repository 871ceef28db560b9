// How the NATS backend stores a topic message and reads back where it sits.
//
// Payload: str id (the backbone message id, also sent as the Nats-Msg-Id header for
// JetStream's duplicate check), then the StoredMessage encoding (delivery/stored_message.h).
// Carrying the id in the payload spares the reader libnats' header parsing, one hash table per
// message (BENCHMARKS.md, bench/broker).
//
// A pushed JetStream message's reply subject says where it sits:
//   $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
//   $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>
//          .<time>.<pending>[.<token>]
// parse_ack_reply reads the stream sequence and the pending count from it, without libnats'
// allocating metadata parser.
//
// Thread-safety: plain functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "broker/delivery/stored_message.h"

namespace backbone::nats {

void encode_nats_message(std::string_view id, const delivery::StoredMessage& m,
                         std::string& payload);
bool decode_nats_message(std::string_view payload, std::string& id, delivery::StoredMessage& m);

struct AckReply {
  uint64_t stream_seq = 0;
  uint64_t pending = 0;  // messages after this one in the stream, for its consumer
};
// false if `reply` is not a JetStream acknowledgement subject.
bool parse_ack_reply(std::string_view reply, AckReply& out);

}  // namespace backbone::nats
