#include "broker/pubsub/pubsub_url.h"

#include <algorithm>
#include <cstdlib>

#include "core/percent_decode.h"

namespace backbone::pubsub {
namespace {

Error bad(const std::string& why) { return make_error(Errc::kInvalidArgument, why, "broker"); }

}  // namespace

Result<PubsubUrl> parse_pubsub_url(std::string_view url) {
  constexpr std::string_view kScheme = "pubsub://";
  if (!url.starts_with(kScheme)) return bad("want pubsub://PROJECT");
  std::string_view rest = url.substr(kScheme.size());
  std::string_view query;
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  PubsubUrl out;
  const bool ok_project =
      !rest.empty() && rest.size() <= 30 && std::all_of(rest.begin(), rest.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      });
  if (!ok_project)
    return bad("\"" + std::string(rest) + "\" is not a project id ([a-z0-9-]{1,30})");
  out.project = std::string(rest);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return bad("\"" + std::string(pair) + "\" is not key=value");
    const std::string_view key = pair.substr(0, eq);
    auto value = percent_decode(pair.substr(eq + 1));
    if (!value || value->empty()) return bad("bad value of " + std::string(key));
    if (key == "endpoint") {
      if (value->find(':') == std::string::npos) return bad("endpoint must be host:port");
      out.endpoint = *value;
      out.plaintext = true;
    } else if (key == "token_env") {
      const char* token = std::getenv(value->c_str());
      if (!token || !*token) return bad("token_env names " + *value + ", which is not set");
      out.token = token;
    } else {
      return bad("unknown parameter \"" + std::string(key) + "\" (endpoint, token_env)");
    }
  }
  if (out.endpoint.empty()) {
    const char* emulator = std::getenv("PUBSUB_EMULATOR_HOST");
    if (emulator && *emulator) {
      out.endpoint = emulator;
      out.plaintext = true;
    } else {
      out.endpoint = std::string(kGoogleEndpoint);
    }
  }
  return out;
}

}  // namespace backbone::pubsub
