// RecordKey and OrderingKey: strong types for a business record's identity and the broker
// ordering key derived from it ("{record_type}:{record_id}", SPEC §3).
//
// Thread-safety: plain values.
#pragma once

#include <compare>
#include <string>

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

}  // namespace backbone
