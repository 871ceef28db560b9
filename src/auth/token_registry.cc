#include "auth/token_registry.h"

#include <algorithm>

#include "backbone/canonical_json.h"
#include "backbone/sha256.h"

namespace backbone::auth {
namespace {

Principal principal_of(const StoredToken& t, const std::string& env) {
  Principal p{t.name, env, {}, token_id(t.sha256)};
  for (const std::string& r : t.roles) {
    // A role this version does not know grants nothing.
    if (auto perm = parse_permission(r); perm.ok()) p.permissions.add(*perm);
  }
  return p;
}

// A JSON string literal of `text`.
std::string json_string(const std::string& text) {
  std::string out;
  append_canonical_string(out, text);
  return out;
}

Error unknown() { return make_error(Errc::kUnauthenticated, "unknown bearer token"); }

constexpr int64_t kMissReloadUs = 100'000;

}  // namespace

void TokenRegistry::add_env(const std::string& env, EventStore& store) {
  std::lock_guard lock(mu_);
  envs_[env].store = &store;
}

Result<void> TokenRegistry::reload(const std::string& env) const {
  EventStore* store = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = envs_.find(env);
    if (it == envs_.end()) return {};
    store = it->second.store;
  }
  auto rows = store->tokens();
  if (!rows.ok()) return rows.error();
  std::map<std::string, StoredToken> by_hash;
  for (StoredToken& t : *rows) {
    std::string key = t.sha256;
    by_hash.emplace(std::move(key), std::move(t));
  }
  std::lock_guard lock(mu_);
  envs_[env].by_hash = std::move(by_hash);
  return {};
}

Result<void> TokenRegistry::refresh() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    for (const auto& [env, e] : envs_) names.push_back(env);
  }
  std::lock_guard one(reload_mu_);
  Result<void> first;
  for (const std::string& env : names) {
    auto r = reload(env);
    if (!r.ok() && first.ok()) first = r;
  }
  return first;
}

Result<Principal> TokenRegistry::authenticate(std::string_view token) const {
  const std::optional<std::string> env = token_env(token);
  if (!env) return unknown();
  const std::string hash = sha256_hex(token);
  const Timestamp now = clock_.now();
  auto find = [&]() -> std::optional<StoredToken> {
    std::lock_guard lock(mu_);
    auto e = envs_.find(*env);
    if (e == envs_.end()) return std::nullopt;
    auto t = e->second.by_hash.find(hash);
    if (t == e->second.by_hash.end()) return std::nullopt;
    return t->second;
  };
  std::optional<StoredToken> found = find();
  if (!found) {
    // Made a moment ago, perhaps: read this environment's tokens again, unless that was just
    // done (so that a stream of unknown tokens cannot keep the store busy).
    std::lock_guard one(reload_mu_);
    bool due = false;
    {
      std::lock_guard lock(mu_);
      auto e = envs_.find(*env);
      if (e == envs_.end()) return unknown();
      due = !e->second.missed_at || now.micros() - e->second.missed_at->micros() >= kMissReloadUs ||
            now < *e->second.missed_at;
      if (due) e->second.missed_at = now;
    }
    if (due) BACKBONE_TRY(reload(*env));
    found = find();
    if (!found) return unknown();
  }
  const std::string id = token_id(found->sha256);
  if (found->revoked_at) {
    return make_error(Errc::kUnauthenticated, "bearer token " + id + " (\"" + found->name +
                                                  "\") was revoked at " +
                                                  found->revoked_at->to_rfc3339());
  }
  if (found->expires_at && !(now < *found->expires_at)) {
    return make_error(Errc::kUnauthenticated, "bearer token " + id + " (\"" + found->name +
                                                  "\") expired at " +
                                                  found->expires_at->to_rfc3339());
  }
  {
    std::lock_guard lock(mu_);
    Timestamp& last = envs_[*env].uses[hash];
    if (last < now) last = now;
  }
  return principal_of(*found, *env);
}

Result<void> TokenRegistry::flush_uses() {
  std::vector<std::pair<EventStore*, std::vector<TokenUse>>> pending;
  {
    std::lock_guard lock(mu_);
    for (auto& [env, e] : envs_) {
      if (e.uses.empty()) continue;
      std::vector<TokenUse> uses;
      for (const auto& [hash, at] : e.uses) uses.push_back({hash, at});
      e.uses.clear();
      pending.emplace_back(e.store, std::move(uses));
    }
  }
  Result<void> first;
  for (auto& [store, uses] : pending) {
    auto r = store->note_token_uses(uses);
    if (!r.ok() && first.ok()) first = r;
  }
  return first;
}

Result<CreatedToken> create_token(EventStore& store, const std::string& env,
                                  const std::string& name, const std::vector<std::string>& roles,
                                  std::optional<int64_t> ttl_us, Timestamp now,
                                  const std::string& actor) {
  auto permissions = parse_roles(roles);
  if (!permissions.ok()) return permissions.error();
  if (ttl_us && *ttl_us <= 0) {
    return make_error(Errc::kInvalidArgument, "a token's ttl must be positive", "ttl");
  }
  auto made = make_token(env);
  if (!made.ok()) return made.error();
  CreatedToken out;
  out.token = std::move(made->token);
  out.row.sha256 = made->sha256;
  out.row.name = name;
  out.row.roles = permissions->names();
  out.row.created_at = now;
  if (ttl_us) out.row.expires_at = Timestamp::from_micros(now.micros() + *ttl_us);
  BACKBONE_TRY(store.add_token(out.row));
  std::string detail = "{\"name\":" + json_string(name) + ",\"roles\":[";
  for (size_t i = 0; i < out.row.roles.size(); ++i) {
    detail += (i ? "," : "") + json_string(out.row.roles[i]);
  }
  detail += "]";
  if (out.row.expires_at)
    detail += ",\"expires_at\":" + json_string(out.row.expires_at->to_rfc3339());
  detail += "}";
  BACKBONE_TRY(record_admin_act(
      store, {now, actor, "token.create", token_id(out.row.sha256), detail}, "the token was made"));
  return out;
}

Result<void> record_admin_act(EventStore& store, const AdminActionDraft& act, const char* done) {
  auto recorded = store.append_admin_action(act);
  if (recorded.ok()) return {};
  Error e = recorded.error();
  e.message = std::string(done) + ", but the admin audit did not record it: " + e.message;
  return e;
}

Result<StoredToken> revoke_token(EventStore& store, const std::string& which, Timestamp now,
                                 const std::string& actor) {
  auto all = store.tokens();
  if (!all.ok()) return all.error();
  std::vector<const StoredToken*> by_hash, by_name;
  for (const StoredToken& t : *all) {
    if (which.size() >= 8 && t.sha256.rfind(which, 0) == 0) by_hash.push_back(&t);
    if (t.name == which && !t.revoked_at) by_name.push_back(&t);
  }
  const auto& match = by_hash.empty() ? by_name : by_hash;
  if (match.empty())
    return make_error(Errc::kNotFound, "no token has the id or name \"" + which + "\"");
  if (match.size() > 1) {
    return make_error(Errc::kInvalidArgument, std::to_string(match.size()) + " tokens match \"" +
                                                  which + "\"; give the id (backbone token list)");
  }
  StoredToken row = *match[0];
  auto revoked = store.revoke_token(row.sha256, now);
  if (!revoked.ok()) return revoked.error();
  if (*revoked) {
    BACKBONE_TRY(record_admin_act(store,
                                  {now, actor, "token.revoke", token_id(row.sha256),
                                   "{\"name\":" + json_string(row.name) + "}"},
                                  "the token was revoked"));
  }
  return row;
}

Result<size_t> import_tokens(EventStore& store, const std::string& env,
                             const std::vector<std::pair<std::string, Principal>>& entries,
                             Timestamp now) {
  std::vector<const std::pair<std::string, Principal>*> mine;
  for (const auto& e : entries) {
    if (e.second.env == env) mine.push_back(&e);
  }
  if (mine.empty()) return size_t{0};
  auto held = store.tokens();
  if (!held.ok()) return held.error();
  size_t added = 0;
  for (const auto* e : mine) {
    const bool known = std::any_of(held->begin(), held->end(),
                                   [&](const StoredToken& t) { return t.sha256 == e->first; });
    if (known) continue;
    StoredToken row;
    row.sha256 = e->first;
    row.name = e->second.name;
    row.roles = e->second.permissions.names();
    row.created_at = now;
    auto stored = store.add_token(row);
    if (!stored.ok() && stored.code() == Errc::kAlreadyExists) continue;  // another process's
    if (!stored.ok()) return stored.error();
    ++added;
  }
  return added;
}

}  // namespace backbone::auth
