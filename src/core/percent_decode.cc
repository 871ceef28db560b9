#include "core/percent_decode.h"

namespace backbone {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

bool take_userinfo(std::string_view& authority, std::string& user, std::string& password) {
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return true;
  const std::string_view userinfo = authority.substr(0, at);
  const size_t colon = userinfo.find(':');
  auto u = percent_decode(userinfo.substr(0, colon));
  auto p = percent_decode(colon == std::string_view::npos ? std::string_view()
                                                          : userinfo.substr(colon + 1));
  if (!u || !p) return false;
  user = std::move(*u);
  password = std::move(*p);
  authority = authority.substr(at + 1);
  return true;
}

}  // namespace backbone
