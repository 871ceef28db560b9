// TokenStore: bearer tokens, each scoped to one environment and a set of permissions (publish,
// subscribe, read, admin: auth/principal.h). Only the SHA-256 of a token is stored, in a JSON file
// that is replaced atomically; the token itself is shown once, when it is made.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.h"
#include "backbone/result.h"

namespace backbone::auth {

class TokenStore {
 public:
  // Loads `path` (a missing file is an empty store).
  static Result<TokenStore> open(const std::string& path);
  TokenStore(TokenStore&& o) noexcept
      : path_(std::move(o.path_)), by_hash_(std::move(o.by_hash_)), loaded_(o.loaded_) {}

  // Makes a token for `env` with `roles` (permission names) and saves its hash; returns the
  // token. kInvalidArgument for no role or an unknown one.
  Result<std::string> create(const std::string& name, const std::string& env,
                             const std::vector<std::string>& roles);
  // The principal of a bearer token: kUnauthenticated when it is unknown. A token unknown here
  // is looked up again in the file when the file changed since it was read (tokens created
  // while `serve` runs work at once).
  Result<Principal> authenticate(std::string_view token) const;
  // The same for an HTTP Authorization header or gRPC "authorization" metadata value, which
  // must read "Bearer <token>"; empty: kUnauthenticated asking for one.
  Result<Principal> authenticate_bearer(std::string_view header) const;
  size_t size() const;

 private:
  explicit TokenStore(std::string path) : path_(std::move(path)) {}
  Result<void> save() const;
  // Which file is at path_ (all zero when none).
  struct FileVersion {
    uint64_t inode = 0;
    int64_t mtime_s = 0, mtime_ns = 0;
    bool operator==(const FileVersion&) const = default;
  };
  FileVersion file_version() const;
  // Reads the file into by_hash_. REQUIRES: mu_ held.
  Result<void> load_locked() const;
  std::string path_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Principal> by_hash_;  // GUARDED_BY(mu_)
  mutable FileVersion loaded_;  // GUARDED_BY(mu_): the file by_hash_ came from
};

}  // namespace backbone::auth
