#include "broker/delivery/ack_id.h"

#include <charconv>

namespace backbone::delivery {
namespace {

// Reads all of `s` as a decimal u64.
bool whole_u64(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::string encode_ack_id(std::string_view owner, uint64_t offset, uint64_t generation) {
  BACKBONE_ASSERT(!owner.empty() && owner.find(':') == std::string_view::npos);
  std::string out(owner);
  out += ':';
  out += std::to_string(offset);
  out += ':';
  out += std::to_string(generation);
  return out;
}

Result<AckId> parse_ack_id(std::string_view text) {
  const size_t a = text.find(':');
  const size_t b = a == std::string_view::npos ? a : text.find(':', a + 1);
  AckId id;
  if (a == 0 || b == std::string_view::npos ||
      !whole_u64(text.substr(a + 1, b - a - 1), id.offset) ||
      !whole_u64(text.substr(b + 1), id.generation)) {
    return make_error(Errc::kInvalidArgument, "malformed ack id \"" + std::string(text) + "\"",
                      "ack_ids");
  }
  id.owner = std::string(text.substr(0, a));
  return id;
}

}  // namespace backbone::delivery
