// TokenFile: bearer tokens in a JSON file, each scoped to one environment and a set of
// permissions (publish, subscribe, read, admin: auth/principal.h). Only the SHA-256 of a token
// is kept, in a file that is replaced atomically. This is where tokens lived before they moved
// into each environment's store (token_registry.h, doc/tokens.md): `serve` imports the file's
// tokens into the stores when it starts; the Pub/Sub front's own tests authenticate with one.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.h"
#include "auth/principal.h"
#include "backbone/result.h"

namespace backbone::auth {

class TokenFile final : public Authenticator {
 public:
  // Loads `path` (a missing file is an empty store).
  static Result<TokenFile> open(const std::string& path);
  TokenFile(TokenFile&& o) noexcept
      : path_(std::move(o.path_)), by_hash_(std::move(o.by_hash_)), loaded_(o.loaded_) {}

  // Makes a token for `env` with `roles` (permission names) and saves its hash; returns the
  // token. kInvalidArgument for no role or an unknown one.
  Result<std::string> create(const std::string& name, const std::string& env,
                             const std::vector<std::string>& roles);
  // The principal of a bearer token: kUnauthenticated when it is unknown. A token unknown here
  // is looked up again in the file when the file changed since it was read (tokens created
  // while `serve` runs work at once).
  Result<Principal> authenticate(std::string_view token) const override;
  size_t size() const;
  // Every token: its hash and principal.
  std::vector<std::pair<std::string, Principal>> entries() const;

 private:
  explicit TokenFile(std::string path) : path_(std::move(path)) {}
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
