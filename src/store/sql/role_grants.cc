#include "store/sql/role_grants.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "store/sql/sql_dialect.h"
#include "store/sql/sql_login.h"

namespace backbone::sql {
namespace {

constexpr Role kRoles[] = {Role::kMigrator, Role::kSyncWorker, Role::kMergeWorker, Role::kReader};

struct Target {
  StoreUrl url;
  ServerStoreSettings settings;
  const SqlDialect* dialect;
};

Result<Target> target(std::string_view text, const SqlDialect* dialect) {
  auto url = parse_store_url(text);
  if (!url.ok()) return url.error();
  if (dialect == nullptr) {
    return make_error(Errc::kInvalidArgument,
                      "roles live on a database server: want a postgresql:// or mysql:// store "
                      "(SQLite enforces the roles per connection, with an authorizer)",
                      "store");
  }
  for (char c : url->database) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
      return make_error(Errc::kInvalidArgument,
                        "database name \"" + url->database + "\": only A-Z, a-z, 0-9 and _",
                        "store");
    }
  }
  auto settings = server_store_settings(*url);
  if (!settings.ok()) return settings.error();
  return Target{std::move(*url), std::move(*settings), dialect};
}

// Runs `statements` in order; with `tolerate_missing`, a "no such login or grant" is skipped.
Result<void> run_all(SqlConnection& c, const SqlDialect& d,
                     const std::vector<std::string>& statements, bool tolerate_missing) {
  for (const std::string& s : statements) {
    auto r = c.exec(s);
    if (!r.ok() && !(tolerate_missing && d.is_unknown_login(r.error()))) return r;
  }
  return {};
}

// What the server's anonymous accounts do to the roles' logins, a line each: for the grant's
// log, or (`refused`) to explain a role's login that the server refused.
std::vector<std::string> anonymous_notes(SqlConnection& admin, const SqlDialect& d, bool refused) {
  std::vector<std::string> out;
  auto hosts = d.anonymous_account_hosts(admin);
  if (!hosts.ok()) return out;
  const std::vector<std::string> ours = d.role_account_hosts();
  for (const std::string& h : *hosts) {
    const std::string anonymous = "anonymous account ''@'" + h + "'";
    const bool covered = std::find(ours.begin(), ours.end(), h) != ours.end();
    if (covered && !refused) {
      out.push_back(anonymous + ": each role's login exists at '" + h +
                    "' too, which the server ranks above it");
      continue;
    }
    out.push_back(anonymous + " ranks above a login at '%' for connections that the server " +
                  "sees as coming from " + h +
                  " (it matches the most specific host first), and refuses them with Access "
                  "denied. " +
                  (covered ? "`backbone db grant` makes each role's login at '" + h +
                                 "' too, which ranks above it; or remove it: "
                           : "Remove it: ") +
                  "DROP USER ''@'" + h + "' (mariadb-secure-installation removes them all)");
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> grant_roles(std::string_view text, const SqlDialect* dialect) {
  auto t = target(text, dialect);
  if (!t.ok()) return t.error();
  const SqlDialect& d = *t->dialect;
  std::vector<std::string> log;
  {
    auto maintenance = d.connect(admin_login(t->url, t->settings, d.maintenance_database()));
    if (!maintenance.ok()) return maintenance.error();
    BACKBONE_TRY(d.create_database(**maintenance, t->url.database));
    log.push_back("database " + t->url.database + ": present");
  }
  auto admin = d.connect(admin_login(t->url, t->settings, t->url.database));
  if (!admin.ok()) return admin.error();
  SqlConnection& c = **admin;
  auto comment = c.run(d.events_comment_query());
  if (!comment.ok()) return comment.error();
  const bool tables = !comment->rows.empty() && comment->rows[0][0] &&
                      comment->rows[0][0]->rfind("backbone schema ", 0) == 0;
  for (std::string& note : anonymous_notes(c, d, false)) log.push_back(std::move(note));
  for (Role role : kRoles) {
    const std::string login = role_login_name(role, t->settings);
    const char* password = std::getenv(role_password_variable(role).c_str());
    if (password == nullptr || *password == '\0') {
      return make_error(Errc::kInvalidArgument, "set " + role_password_variable(role) +
                                                    " to the password of login " + login);
    }
    // Logins are server-wide: two grants at once (parallel tests) may race to create one.
    Result<void> ensured;
    for (int attempt = 0; attempt < 8; ++attempt) {
      ensured = run_all(c, d, d.ensure_login(role, login, password, t->url.database), false);
      if (ensured.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
    }
    if (!ensured.ok()) return ensured.error();
    if (tables) {
      BACKBONE_TRY(run_all(c, d, d.revoke_table_privileges(login, t->url.database), true));
      BACKBONE_TRY(run_all(c, d, d.grant_table_privileges(role, login, t->url.database), false));
    }
    log.push_back(std::string("login ") + login + " (" + role_name(role) + "): " +
                  (tables ? "privileges set" : "created; table privileges come with `migrate`"));
  }
  return log;
}

namespace {

struct Probe {
  const char* name;
  const char* sql;
  bool allowed[4];  // migrator, sync_worker, merge_worker, reader (SPEC §2)
  bool ddl = false;
};

// Each probe touches no row (WHERE 1 = 0): the privilege is checked all the same.
constexpr Probe kProbes[] = {
    {"events: SELECT", "SELECT COUNT(*) FROM events", {true, true, true, true}},
    {"events: INSERT",
     "INSERT INTO events SELECT * FROM events WHERE 1 = 0",
     {true, true, true, false}},
    {"events: UPDATE (processed)",
     "UPDATE events SET processed = processed WHERE 1 = 0",
     {true, false, true, false}},
    {"events: UPDATE (other columns)",
     "UPDATE events SET source = source WHERE 1 = 0",
     {true, false, false, false}},
    {"events: DELETE", "DELETE FROM events WHERE 1 = 0", {true, false, false, false}},
    {"event_audit_log: SELECT", "SELECT COUNT(*) FROM event_audit_log", {true, true, true, true}},
    {"event_audit_log: INSERT",
     "INSERT INTO event_audit_log SELECT * FROM event_audit_log WHERE 1 = 0",
     {true, true, true, false}},
    {"event_audit_log: UPDATE",
     "UPDATE event_audit_log SET action = action WHERE 1 = 0",
     {true, false, false, false}},
    {"event_audit_log: DELETE",
     "DELETE FROM event_audit_log WHERE 1 = 0",
     {true, false, false, false}},
    {"records: SELECT", "SELECT COUNT(*) FROM records", {true, false, true, true}},
    {"records: INSERT",
     "INSERT INTO records SELECT * FROM records WHERE 1 = 0",
     {true, false, true, false}},
    {"records: UPDATE",
     "UPDATE records SET version = version WHERE 1 = 0",
     {true, false, true, false}},
    {"records: DELETE", "DELETE FROM records WHERE 1 = 0", {true, false, false, false}},
    // The relay's outbox: ingest enters events and takes out what it published.
    {"event_outbox: SELECT", "SELECT COUNT(*) FROM event_outbox", {true, true, false, true}},
    {"event_outbox: INSERT",
     "INSERT INTO event_outbox SELECT * FROM event_outbox WHERE 1 = 0",
     {true, true, false, false}},
    {"event_outbox: DELETE", "DELETE FROM event_outbox WHERE 1 = 0", {true, true, false, false}},
    // Bucket leases and membership: the merge stages'.
    {"bucket_leases: SELECT", "SELECT COUNT(*) FROM bucket_leases", {true, false, true, true}},
    {"bucket_leases: UPDATE",
     "UPDATE bucket_leases SET epoch = epoch WHERE 1 = 0",
     {true, false, true, false}},
    {"bucket_leases: DELETE", "DELETE FROM bucket_leases WHERE 1 = 0", {true, false, false, false}},
    {"cluster_members: DELETE",
     "DELETE FROM cluster_members WHERE 1 = 0",
     {true, false, true, false}},
    // The audit chains' heads: moved by every role that appends to the log.
    {"audit_heads: SELECT", "SELECT COUNT(*) FROM audit_heads", {true, true, true, true}},
    {"audit_heads: UPDATE",
     "UPDATE audit_heads SET chain_hash = chain_hash WHERE 1 = 0",
     {true, true, true, false}},
    {"audit_heads: DELETE", "DELETE FROM audit_heads WHERE 1 = 0", {true, false, false, false}},
    // Tokens: the migrator makes and revokes them; ingest records their last use.
    {"api_tokens: SELECT", "SELECT COUNT(*) FROM api_tokens", {true, true, true, true}},
    {"api_tokens: INSERT",
     "INSERT INTO api_tokens SELECT * FROM api_tokens WHERE 1 = 0",
     {true, false, false, false}},
    {"api_tokens: UPDATE (last use)",
     "UPDATE api_tokens SET last_used_at_us = last_used_at_us WHERE 1 = 0",
     {true, true, false, false}},
    {"api_tokens: UPDATE (revoked)",
     "UPDATE api_tokens SET revoked_at_us = revoked_at_us WHERE 1 = 0",
     {true, false, false, false}},
    // The admin audit: the migrator (an administrator's act) writes it; the reader reads it.
    {"admin_audit: SELECT", "SELECT COUNT(*) FROM admin_audit", {true, false, false, true}},
    {"admin_audit: INSERT",
     "INSERT INTO admin_audit SELECT * FROM admin_audit WHERE 1 = 0",
     {true, false, false, false}},
    // IAM policies: the migrator (an administrator's act) sets them; every role reads them.
    {"iam_policies: SELECT", "SELECT COUNT(*) FROM iam_policies", {true, true, true, true}},
    {"iam_policies: INSERT",
     "INSERT INTO iam_policies SELECT * FROM iam_policies WHERE 1 = 0",
     {true, false, false, false}},
    {"iam_policies: UPDATE",
     "UPDATE iam_policies SET version = version WHERE 1 = 0",
     {true, false, false, false}},
    {"DDL: CREATE TABLE",
     "CREATE TABLE backbone_grant_probe (x INT)",
     {true, false, false, false},
     true},
};

}  // namespace

Result<std::vector<GrantProbe>> check_grants(std::string_view text, const SqlDialect* dialect) {
  auto t = target(text, dialect);
  if (!t.ok()) return t.error();
  const SqlDialect& d = *t->dialect;
  std::vector<GrantProbe> out;
  for (size_t r = 0; r < std::size(kRoles); ++r) {
    const Role role = kRoles[r];
    auto conn = d.connect(role_login(t->url, t->settings, role));
    if (!conn.ok()) {
      Error e = conn.error();
      e.message = std::string("as ") + role_name(role) + ": " + e.message;
      // A refused login: say whether an anonymous account is why.
      if (auto admin = d.connect(admin_login(t->url, t->settings, t->url.database)); admin.ok()) {
        for (const std::string& note : anonymous_notes(**admin, d, true)) {
          e.message += "; " + note;
        }
      }
      return e;
    }
    SqlConnection& c = **conn;
    for (const Probe& p : kProbes) {
      BACKBONE_TRY(c.exec(p.ddl ? "SELECT 1" : "BEGIN"));
      auto tried = c.exec(p.sql);
      if (p.ddl) {
        if (tried.ok()) BACKBONE_TRY(c.exec("DROP TABLE backbone_grant_probe"));
      } else {
        BACKBONE_TRY(c.exec("ROLLBACK"));
      }
      if (!tried.ok() && tried.code() != Errc::kPermissionDenied) {
        Error e = tried.error();
        e.message = std::string("as ") + role_name(role) + ", " + p.name + ": " + e.message;
        return e;
      }
      out.push_back({role, p.name, p.allowed[r], tried.ok(),
                     tried.ok() ? std::string() : tried.error().message});
    }
  }
  return out;
}

}  // namespace backbone::sql
