// Authenticator: what turns a bearer token into the Principal it speaks for. The HTTP API and
// the Pub/Sub front take one; `serve`'s is a TokenRegistry (the tokens in each environment's
// store, token_registry.h), and a TokenFile (tokens.h) is one too.
//
// Thread-safety: implementations are thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.h"
#include "backbone/result.h"

namespace backbone::auth {

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // The principal of a bearer token; kUnauthenticated, saying why, when it is not valid.
  virtual Result<Principal> authenticate(std::string_view token) const = 0;
  // The same for an HTTP Authorization header or gRPC "authorization" metadata value, which
  // must read "Bearer <token>"; empty: kUnauthenticated asking for one.
  Result<Principal> authenticate_bearer(std::string_view header) const;
};

// A new bearer token for `env`, "bb_<env>_" and 32 random characters of [A-Za-z0-9_-] (192
// bits), and its SHA-256 (lowercase hex), which is all that is kept of it.
struct NewToken {
  std::string token;
  std::string sha256;
};
Result<NewToken> make_token(const std::string& env);
// The environment a token names, if it has the form make_token gives.
std::optional<std::string> token_env(std::string_view token);
// How a token is told by people and tools: the first 12 digits of its hash.
inline std::string token_id(std::string_view sha256) { return std::string(sha256.substr(0, 12)); }
// The permissions of role names (kInvalidArgument for none or an unknown one).
Result<Permissions> parse_roles(const std::vector<std::string>& roles);

}  // namespace backbone::auth
