// Who a server store logs in as. A store opened as a Role logs in as that role's login: the
// role's name (migrator, sync_worker, merge_worker, reader) after the URL's optional
// `role_prefix` parameter (e.g. role_prefix=sandbox_, so that two environments on one server
// have separate logins), with the password from the environment variable
// BACKBONE_ROLE_PASSWORD_<ROLE> (e.g. BACKBONE_ROLE_PASSWORD_SYNC_WORKER), never from the
// command line. The user and password in the URL are the administrator's (`db grant`).
//
// URL parameters: role_prefix=[a-z0-9_]*, pool_size=N (connections per store, default 4),
// connect_timeout_s=N (default 10), reconnect_timeout_ms=N (how long a write retries a lost
// connection before it fails with kUnavailable; default 30000), stall_timeout_ms=N (the server
// ends a session that stays this long inside a transaction without a statement, default 2000;
// doc/scale_out.md: a process stopped inside a write would otherwise hold its locks, and the
// claims of its buckets with them, until it is continued).
#pragma once

#include <string>

#include "backbone/role.h"
#include "store/sql/sql_dialect.h"
#include "store/store_url.h"

namespace backbone::sql {

struct ServerStoreSettings {
  std::string role_prefix;
  size_t pool_size = 4;
  int connect_timeout_s = 10;
  int64_t reconnect_timeout_ms = 30'000;
  int64_t stall_timeout_ms = 2'000;
};

// kInvalidArgument for an unknown or malformed parameter.
Result<ServerStoreSettings> server_store_settings(const StoreUrl& url);

std::string role_login_name(Role role, const ServerStoreSettings& settings);
std::string role_password_variable(Role role);  // "BACKBONE_ROLE_PASSWORD_SYNC_WORKER"
// The login of `role` on the URL's server and database (password from the environment).
SqlLogin role_login(const StoreUrl& url, const ServerStoreSettings& settings, Role role);
// The administrator's login (the URL's user and password), on `database`.
SqlLogin admin_login(const StoreUrl& url, const ServerStoreSettings& settings,
                     const std::string& database);

}  // namespace backbone::sql
