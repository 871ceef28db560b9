#include "backbone/canonical_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/json_internal.h"

namespace backbone {
namespace {

constexpr int64_t kMaxSafeInteger = 9'007'199'254'740'991;  // 2^53 - 1

// Compares two UTF-8 strings by their UTF-16 code units (RFC 8785 §3.2.3). UTF-8 byte order
// equals code point order; UTF-16 order differs only where a supplementary character (4-byte
// UTF-8, a surrogate pair in UTF-16) meets one of U+E000..U+FFFF, so map code points to the
// first UTF-16 unit's order for that case.
uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len && i + k < s.size(); ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  i += len;
  return cp;
}

bool utf16_less(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    uint32_t ca = next_code_point(a, i);
    uint32_t cb = next_code_point(b, j);
    if (ca == cb) continue;
    // Supplementary characters start with a high surrogate (0xD800..0xDBFF) in UTF-16.
    auto unit = [](uint32_t cp) -> uint32_t {
      return cp >= 0x10000 ? 0xD800 + ((cp - 0x10000) >> 10) : cp;
    };
    const uint32_t ua = unit(ca), ub = unit(cb);
    if (ua != ub) return ua < ub;
    return ca < cb;  // same high surrogate: the low surrogates order as the code points do
  }
  return a.size() - i < b.size() - j;
}

Result<void> write_value(const nlohmann::json& v, std::string& out, std::string& path) {
  using nlohmann::json;
  switch (v.type()) {
    case json::value_t::null:
      out += "null";
      return {};
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return {};
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
      const bool neg = v.is_number_integer() && v.get<int64_t>() < 0;
      const bool safe = neg ? v.get<int64_t>() >= -kMaxSafeInteger
                            : v.get<uint64_t>() <= static_cast<uint64_t>(kMaxSafeInteger);
      if (!safe) {
        return make_error(Errc::kInvalidArgument,
                          "integer outside ±(2^53-1) cannot be kept exactly (I-JSON, RFC 7493)",
                          path);
      }
      out += v.dump();  // a safe integer prints the same in ECMAScript
      return {};
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!std::isfinite(d)) {
        return make_error(Errc::kInvalidArgument, "number is not finite", path);
      }
      out += format_canonical_number(d);
      return {};
    }
    case json::value_t::string:
      append_canonical_string(out, v.get_ref<const std::string&>());
      return {};
    case json::value_t::array: {
      out.push_back('[');
      size_t i = 0;
      for (const auto& item : v) {
        if (i) out.push_back(',');
        const size_t mark = path.size();
        path.push_back('[');
        path += std::to_string(i++);
        path.push_back(']');
        BACKBONE_TRY(write_value(item, out, path));
        path.resize(mark);
      }
      out.push_back(']');
      return {};
    }
    case json::value_t::object: {
      std::vector<const std::string*> keys;
      keys.reserve(v.size());
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(&it.key());
      std::sort(keys.begin(), keys.end(),
                [](const std::string* a, const std::string* b) { return utf16_less(*a, *b); });
      out.push_back('{');
      bool first = true;
      for (const std::string* k : keys) {
        if (!first) out.push_back(',');
        first = false;
        append_canonical_string(out, *k);
        out.push_back(':');
        const size_t mark = path.size();
        if (!path.empty()) path.push_back('.');
        path += *k;
        BACKBONE_TRY(write_value(v.at(*k), out, path));
        path.resize(mark);
      }
      out.push_back('}');
      return {};
    }
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return make_error(Errc::kInvalidArgument, "not a JSON value", path);
}

}  // namespace

namespace json_internal {

Result<nlohmann::json> parse_strict(std::string_view text) {
  using nlohmann::json;
  // One set of keys per open object, to find duplicate keys, which nlohmann would otherwise
  // resolve silently by keeping the last.
  std::vector<std::unordered_set<std::string>> open;
  std::string problem;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open.emplace_back();
        [[fallthrough]];
      case json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth && problem.empty()) {
          problem = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
        }
        break;
      case json::parse_event_t::key:
        if (!open.empty() && !open.back().insert(parsed.get<std::string>()).second &&
            problem.empty()) {
          problem = "duplicate key \"" + parsed.get<std::string>() + "\"";
        }
        break;
      case json::parse_event_t::object_end:
        if (!open.empty()) open.pop_back();
        break;
      default:
        break;
    }
    return problem.empty();
  };
  json value;
  try {
    value = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const json::parse_error& e) {
    return make_error(Errc::kInvalidArgument,
                      "malformed JSON at byte " + std::to_string(e.byte) + ": " +
                          std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
  } catch (const json::exception& e) {
    return make_error(Errc::kInvalidArgument, std::string("malformed JSON: ") + e.what());
  }
  if (!problem.empty()) return make_error(Errc::kInvalidArgument, "invalid JSON: " + problem);
  if (value.is_discarded()) return make_error(Errc::kInvalidArgument, "invalid JSON");
  return value;
}

Result<void> write_canonical(const nlohmann::json& value, std::string& out) {
  std::string path;
  return write_value(value, out, path);
}

const char* type_phrase(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "a number";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return "an unknown value";
  }
}

std::string canonical_text(const nlohmann::json& value) {
  std::string out;
  const auto r = write_canonical(value, out);
  BACKBONE_ASSERT(r.ok());
  return out;
}

}  // namespace json_internal

Result<std::string> canonicalize_json(std::string_view json) {
  auto parsed = json_internal::parse_strict(json);
  if (!parsed.ok()) return parsed.error();
  std::string out;
  out.reserve(json.size());
  BACKBONE_TRY(json_internal::write_canonical(*parsed, out));
  return out;
}

void append_canonical_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

std::string format_canonical_number(double d) {
  BACKBONE_ASSERT(std::isfinite(d));
  if (d == 0) return "0";  // also -0
  std::string out;
  if (d < 0) {
    out.push_back('-');
    d = -d;
  }
  // Shortest round-trip digits, in scientific form: "d.ddde±x".
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  BACKBONE_ASSERT(ec == std::errc());
  const std::string_view sci(buf, static_cast<size_t>(end - buf));
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exp10 = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exp10);
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;  // the decimal point sits after n digits
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n));
    out.push_back('.');
    out += digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

}  // namespace backbone
