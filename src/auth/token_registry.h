// TokenRegistry: the bearer tokens of the environments a process serves, as each
// environment's store keeps them (doc/tokens.md). A token names its environment
// ("bb_<env>_..."), so it is looked up in that environment's tokens alone.
//
// The tokens are read from the stores into memory, and read again by refresh(): `serve` calls it
// every second, so a token made or revoked through any process (the CLI, another `serve`'s
// route) works, or stops working, on every process within about a second. A token unknown here
// makes its environment's tokens be read again at once (at most every 100 ms by the clock), so
// a token made a moment ago works at once. An expired or revoked token is refused with
// kUnauthenticated and a message that says which. Each use is noted in memory; flush_uses()
// writes the latest per token to its store (last_used_at).
//
// Time is the Clock's: expiry, the pace of the re-reads on a miss, and the recorded uses.
//
// Thread-safety: thread-safe. The stores must outlive the registry.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "auth/authenticator.h"
#include "backbone/clock.h"
#include "backbone/event_store.h"

namespace backbone::auth {

class TokenRegistry final : public Authenticator {
 public:
  explicit TokenRegistry(const Clock& clock) : clock_(clock) {}

  // Serves `env`'s tokens from `store` (any role reads them; uses are written with it, which
  // needs kSyncWorker or kMigrator). Before the first authenticate.
  void add_env(const std::string& env, EventStore& store);
  // Reads every environment's tokens again; the first error is returned, the others still run.
  Result<void> refresh();
  Result<Principal> authenticate(std::string_view token) const override;
  // Writes the latest use of each token noted since the last call.
  Result<void> flush_uses();

 private:
  struct Env {
    EventStore* store = nullptr;
    std::map<std::string, StoredToken> by_hash;
    std::optional<Timestamp> missed_at;  // the last re-read on a miss
    std::map<std::string, Timestamp> uses;
  };
  Result<void> reload(const std::string& env) const;

  const Clock& clock_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Env> envs_;  // GUARDED_BY(mu_)
  mutable std::mutex reload_mu_;             // one re-read at a time, outside mu_
};

// Makes a token for `env` in its store (the migrator's), with `roles` and, when `ttl_us` is
// set, an expiry; returns the token, which is shown once and kept nowhere.
// kInvalidArgument for no role, an unknown one, a bad name or a ttl that is not positive.
struct CreatedToken {
  std::string token;
  StoredToken row;
};
// `actor` made it: the store's admin audit records the act ("token.create").
Result<CreatedToken> create_token(EventStore& store, const std::string& env,
                                  const std::string& name, const std::vector<std::string>& roles,
                                  std::optional<int64_t> ttl_us, Timestamp now,
                                  const std::string& actor);
// Revokes the one token that `which` names: its id (token_id), a longer prefix of its hash, or
// its name when exactly one token that is not revoked has it. kNotFound for none,
// kInvalidArgument for a name that several have. Returns the row as it was.
// `actor` revoked it: recorded as "token.revoke" (not when it was revoked already).
Result<StoredToken> revoke_token(EventStore& store, const std::string& which, Timestamp now,
                                 const std::string& actor);

// Writes an administrator's act to the store's admin audit (after the act itself: a failure
// says that `done` held but was not recorded).
Result<void> record_admin_act(EventStore& store, const AdminActionDraft& act, const char* done);

// Adds to `env`'s store the tokens of a TokenFile (its entries()) that are `env`'s and that the
// store does not hold yet; returns how many. Their created_at is `now`.
Result<size_t> import_tokens(EventStore& store, const std::string& env,
                             const std::vector<std::pair<std::string, Principal>>& entries,
                             Timestamp now);

}  // namespace backbone::auth
