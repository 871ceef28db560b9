#include "broker/nats/nats_message.h"

#include <charconv>
#include <vector>

#include "broker/delivery/codec.h"

namespace backbone::nats {

void encode_nats_message(std::string_view id, const delivery::StoredMessage& m,
                         std::string& payload) {
  delivery::Writer w(payload);
  w.str(id);
  delivery::encode_message(m, payload);
}

bool decode_nats_message(std::string_view payload, std::string& id, delivery::StoredMessage& m) {
  delivery::Reader r(payload.substr(0, 4));
  uint32_t n = 0;
  if (!r.u32(n) || payload.size() < 4 + static_cast<size_t>(n)) return false;
  id.assign(payload.substr(4, n));
  return delivery::decode_message(payload.substr(4 + n), m);
}

bool parse_ack_reply(std::string_view reply, AckReply& out) {
  constexpr std::string_view kPrefix = "$JS.ACK.";
  if (!reply.starts_with(kPrefix)) return false;
  std::string_view rest = reply.substr(kPrefix.size());
  std::string_view tokens[12];
  size_t n = 0;
  while (n < 12) {
    const size_t dot = rest.find('.');
    tokens[n++] = rest.substr(0, dot);
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  // 7 tokens after the prefix in the old form, 9 or more (domain, account hash) in the new.
  size_t seq_at = 0, pending_at = 0;
  if (n == 7) {
    seq_at = 3;
    pending_at = 6;
  } else if (n >= 9) {
    seq_at = 5;
    pending_at = 8;
  } else {
    return false;
  }
  auto number = [](std::string_view s, uint64_t& v) {
    return !s.empty() &&
           std::from_chars(s.data(), s.data() + s.size(), v).ptr == s.data() + s.size();
  };
  return number(tokens[seq_at], out.stream_seq) && number(tokens[pending_at], out.pending);
}

}  // namespace backbone::nats
