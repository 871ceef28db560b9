#include "broker/nats/nats_names.h"

#include <charconv>

namespace backbone::nats {

std::string encode_name(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(name.size());
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
      out.push_back(ch);
    } else {
      out.push_back('_');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<void> check_encodable(std::string_view name, const char* what) {
  if (encode_name(name).size() > kMaxEncodedName) {
    return make_error(Errc::kInvalidArgument,
                      std::string("the NATS backend takes ") + what +
                          " names whose encoding is at most 200 bytes (about 100 punctuation marks "
                          "or 200 letters)",
                      "name");
  }
  return {};
}

std::string topic_stream(const std::string& ns, std::string_view topic) {
  return ns + "-t-" + encode_name(topic);
}
std::string topic_subject(const std::string& ns, std::string_view topic) {
  return ns + ".t." + encode_name(topic);
}
std::string journal_stream(const std::string& ns, std::string_view subscription) {
  return ns + "-s-" + encode_name(subscription);
}
std::string journal_subject(const std::string& ns, std::string_view subscription) {
  return ns + ".s." + encode_name(subscription);
}
std::string bucket_subject(const std::string& subject, uint32_t bucket) {
  return subject + "." + std::to_string(bucket);
}
std::string any_bucket(const std::string& subject) { return subject + ".*"; }
std::optional<uint32_t> subject_bucket(std::string_view subject) {
  const size_t dot = subject.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  uint32_t b = 0;
  const char* first = subject.data() + dot + 1;
  const char* last = subject.data() + subject.size();
  const auto [end, ec] = std::from_chars(first, last, b);
  if (ec != std::errc() || end != last || first == last) return std::nullopt;
  return b;
}
std::string part_subject(const std::string& subject, uint32_t buckets, uint32_t bucket) {
  return buckets > 0 ? bucket_subject(subject, bucket) : subject;
}
std::string catalog_bucket(const std::string& ns) { return ns + "-catalog"; }
std::string topic_key(std::string_view topic) { return "t." + encode_name(topic); }
std::string schema_key(std::string_view schema) { return "sc." + encode_name(schema); }
std::string snapshot_key(std::string_view snapshot) { return "sn." + encode_name(snapshot); }
std::string snapshot_stream(const std::string& ns) { return ns + "-snapshots"; }
std::string snapshot_subject(const std::string& ns, std::string_view uid) {
  return ns + ".n." + std::string(uid);
}
std::string subscription_key(std::string_view subscription) {
  return "s." + encode_name(subscription);
}

}  // namespace backbone::nats
