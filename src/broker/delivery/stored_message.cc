#include "broker/delivery/stored_message.h"

#include <functional>

#include "broker/delivery/codec.h"

namespace backbone::delivery {

void encode_message(const StoredMessage& m, std::string& payload) {
  Writer w(payload);
  w.u64(m.offset);
  w.i64(m.publish_time_us);
  w.str(m.ordering_key);
  w.u32(static_cast<uint32_t>(m.attributes.size()));
  for (const auto& [k, v] : m.attributes) {
    w.str(k);
    w.str(v);
  }
  w.str(m.data);
}

bool decode_message(std::string_view payload, StoredMessage& m) {
  Reader r(payload);
  uint32_t n = 0;
  if (!r.u64(m.offset) || !r.i64(m.publish_time_us) || !r.str(m.ordering_key) || !r.u32(n)) {
    return false;
  }
  m.attributes.clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!r.str(k) || !r.str(v)) return false;
    m.attributes.emplace(std::move(k), std::move(v));
  }
  return r.str(m.data) && r.done();
}

uint64_t ordering_key_hash(std::string_view key) {
  if (key.empty()) return 0;
  const uint64_t h = std::hash<std::string_view>{}(key);
  return h == 0 ? 1 : h;
}

}  // namespace backbone::delivery
