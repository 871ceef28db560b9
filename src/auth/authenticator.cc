#include "auth/authenticator.h"

#include <openssl/rand.h>

#include "backbone/sha256.h"

namespace backbone::auth {
namespace {

constexpr std::string_view kPrefix = "bb_";
constexpr size_t kRandomChars = 32;

}  // namespace

Result<Principal> Authenticator::authenticate_bearer(std::string_view header) const {
  if (header.empty()) {
    return make_error(Errc::kUnauthenticated, "an Authorization: Bearer <token> header is needed");
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (!header.starts_with(kBearer)) {
    return make_error(Errc::kUnauthenticated,
                      "the Authorization header must be \"Bearer <token>\"");
  }
  return authenticate(header.substr(kBearer.size()));
}

Result<NewToken> make_token(const std::string& env) {
  unsigned char raw[kRandomChars];
  if (RAND_bytes(raw, sizeof raw) != 1) return make_error(Errc::kInternal, "no randomness");
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  NewToken t;
  t.token = std::string(kPrefix) + env + "_";
  for (unsigned char c : raw) t.token.push_back(kAlphabet[c & 63]);
  t.sha256 = sha256_hex(t.token);
  return t;
}

std::optional<std::string> token_env(std::string_view token) {
  // The random part may hold '_' and an environment's name may too: count from the end.
  if (!token.starts_with(kPrefix) || token.size() < kPrefix.size() + 2 + kRandomChars) {
    return std::nullopt;
  }
  const size_t env_end = token.size() - kRandomChars - 1;
  if (token[env_end] != '_') return std::nullopt;
  return std::string(token.substr(kPrefix.size(), env_end - kPrefix.size()));
}

Result<Permissions> parse_roles(const std::vector<std::string>& roles) {
  if (roles.empty()) {
    return make_error(Errc::kInvalidArgument, "at least one role is needed", "roles");
  }
  Permissions permissions;
  for (const auto& r : roles) {
    auto p = parse_permission(r);
    if (!p.ok()) return make_error(Errc::kInvalidArgument, p.error().message, "roles");
    permissions.add(*p);
  }
  return permissions;
}

}  // namespace backbone::auth
