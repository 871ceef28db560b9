#include "store/store_url.h"

#include <charconv>
#include <optional>

#include "core/percent_decode.h"

namespace backbone {

Result<StoreUrl> parse_store_url(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kInvalidArgument, "store URL \"" + redact_store_url(url) + "\": " + why,
                      "store");
  };
  if (url.find("{env}") != std::string_view::npos) return bad("\"{env}\" was not replaced");
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad("want scheme://..., e.g. sqlite://var/sandbox.db");
  StoreUrl out;
  out.scheme = std::string(url.substr(0, sep));
  std::string_view rest = url.substr(sep + 3);
  if (out.scheme == "sqlite") {
    if (rest.empty()) return bad("no file path");
    out.path = std::string(rest);  // "/abs" for sqlite:///abs, "rel" for sqlite://rel
    return out;
  }
  if (out.scheme == "postgres") out.scheme = "postgresql";
  if (out.scheme != "postgresql" && out.scheme != "mysql") {
    return bad("unknown scheme \"" + out.scheme + "\" (want sqlite, postgresql or mysql)");
  }
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0) return bad("want param=value in the query");
      auto key = percent_decode(pair.substr(0, eq));
      auto value = percent_decode(pair.substr(eq + 1));
      if (!key || !value) return bad("malformed %-escape in the query");
      out.params[*key] = *value;
    }
  }
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash + 1 == rest.size()) {
    return bad("no database name (want " + out.scheme + "://host:port/database)");
  }
  auto database = percent_decode(rest.substr(slash + 1));
  if (!database || database->find('/') != std::string::npos) return bad("bad database name");
  out.database = *database;
  std::string_view authority = rest.substr(0, slash);
  if (!take_userinfo(authority, out.user, out.password)) {
    return bad("malformed %-escape in the user or password");
  }
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:5432
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed [ in the host");
    host = authority.substr(1, close - 1);
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority.front() != ':') return bad("junk after the host");
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    authority = authority.substr(colon);
  } else {
    authority = {};
  }
  if (host.empty()) return bad("no host");
  out.host = std::string(host);
  if (!authority.empty()) {  // ":port"
    const std::string_view digits = authority.substr(1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      return bad("bad port \"" + std::string(digits) + "\"");
    }
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::string with_database(std::string_view url, const std::string& database) {
  const size_t start = url.find("://") + 3;
  const size_t slash = url.find('/', start);
  const size_t query = url.find('?', slash);
  return std::string(url.substr(0, slash + 1)) + database +
         (query == std::string_view::npos ? std::string() : std::string(url.substr(query)));
}

std::string redact_store_url(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::string(url);
  const size_t start = sep + 3;
  const size_t end = url.find_first_of("/?", start);
  const std::string_view authority =
      url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, start + colon + 1));
  out += "***";
  out += url.substr(start + at);
  return out;
}

}  // namespace backbone
