#include "broker/nats/nats_url.h"

#include <algorithm>
#include <charconv>

#include "core/percent_decode.h"

namespace backbone::nats {
namespace {

Error bad(const std::string& why) { return make_error(Errc::kInvalidArgument, why, "broker"); }

// 1 to `max` characters of [A-Za-z0-9] and `extra`.
bool is_word(std::string_view v, size_t max, std::string_view extra) {
  return !v.empty() && v.size() <= max && std::all_of(v.begin(), v.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           extra.find(c) != std::string_view::npos;
  });
}

bool parse_int(std::string_view s, int64_t& v) {
  return !s.empty() && std::from_chars(s.data(), s.data() + s.size(), v).ec == std::errc() &&
         v >= 0;
}

}  // namespace

Result<NatsUrl> parse_nats_url(std::string_view url) {
  constexpr std::string_view kScheme = "nats://";
  if (!url.starts_with(kScheme)) return bad("want nats://host:port");
  std::string_view rest = url.substr(kScheme.size());
  NatsUrl o;
  std::string_view query;
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (!take_userinfo(rest, o.user, o.password)) {
    return bad("malformed %-escape in the user or password");
  }
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view host = rest.substr(0, comma);
    const size_t colon = host.rfind(':');
    int64_t port = 0;
    if (host.empty() || colon == std::string_view::npos || colon == 0 ||
        !parse_int(host.substr(colon + 1), port) || port == 0 || port > 65535) {
      return bad("\"" + std::string(host) + "\" is not host:port in " + redact_nats_url(url));
    }
    o.servers.push_back("nats://" + std::string(host));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  if (o.servers.empty()) return bad("no server in " + redact_nats_url(url));
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    const size_t eq = kv.find('=');
    const std::string key(kv.substr(0, eq));
    const std::string_view value = eq == std::string_view::npos ? "" : kv.substr(eq + 1);
    int64_t n = 0;
    if (key == "namespace") {
      if (!is_word(value, 32, "-")) return bad("namespace wants 1 to 32 of [A-Za-z0-9-]");
      o.ns = std::string(value);
    } else if (key == "inbox_prefix") {
      if (!is_word(value, 64, "-_")) return bad("inbox_prefix wants 1 to 64 of [A-Za-z0-9-_]");
      o.inbox_prefix = std::string(value);
    } else if (key == "reader_buffer") {
      if (!parse_int(value, n) || n < 16 || n > 10'000'000) {
        return bad("reader_buffer wants 16 to 10000000 messages");
      }
      o.reader_buffer = n;
    } else if (key == "replicas") {
      if (!parse_int(value, n) || n < 1 || n > 5) return bad("replicas wants 1 to 5");
      o.replicas = static_cast<int>(n);
    } else if (key == "dup_window_ms") {
      if (!parse_int(value, n) || n < 1000) return bad("dup_window_ms wants at least 1000");
      o.dup_window_ms = n;
    } else {
      return bad("unknown option " + key);
    }
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  return o;
}

std::string redact_nats_url(std::string_view url) {
  const size_t scheme = url.find("://");
  const size_t at = url.find('@');
  if (scheme == std::string_view::npos || at == std::string_view::npos) return std::string(url);
  const std::string_view userinfo = url.substr(scheme + 3, at - scheme - 3);
  const size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, scheme + 3)) + std::string(userinfo.substr(0, colon)) + ":***" +
         std::string(url.substr(at));
}

}  // namespace backbone::nats
