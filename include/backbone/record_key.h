// RecordKey and OrderingKey: strong types for a business record's identity and the broker
// ordering key derived from it ("{record_type}:{record_id}", SPEC §3); and the bucket of an
// ordering key (doc/scale_out.md).
//
// Thread-safety: plain values.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace backbone {

struct RecordKey {
  std::string record_type;
  std::string record_id;
  auto operator<=>(const RecordKey&) const = default;
};

class OrderingKey {
 public:
  explicit OrderingKey(const RecordKey& key) : s_(key.record_type + ":" + key.record_id) {}
  const std::string& str() const { return s_; }
  auto operator<=>(const OrderingKey&) const = default;

 private:
  std::string s_;
};

// The bucket of an ordering key among `buckets` (> 0): FNV-1a (64 bit) of its bytes, modulo
// the count. Part of the stored format: every process and every version must agree on it.
constexpr uint32_t bucket_of(std::string_view ordering_key, uint32_t buckets) {
  uint64_t h = 14695981039346656037ull;
  for (char c : ordering_key) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<uint32_t>(h % buckets);
}

}  // namespace backbone
