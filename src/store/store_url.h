// Parsing of store URLs (SPEC §6):
//
//   sqlite:///abs/path.db, sqlite://relative/path.db
//   postgresql://[user[:password]@]host[:port]/database[?param=value&...]   (also postgres://)
//   mysql://[user[:password]@]host[:port]/database[?param=value&...]        (MySQL or MariaDB)
//
// For the server backends, the user and password in the URL are the administrator's: only
// `backbone db grant` logs in with them. A store opened as a Role logs in as that role (see
// src/store/sql/sql_login.h). User, password and database are percent-decoded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone {

struct StoreUrl {
  std::string scheme;  // "sqlite", "postgresql" (also for postgres://) or "mysql"
  std::string path;    // sqlite: the file path
  // postgresql and mysql:
  std::string user;      // may be empty
  std::string password;  // may be empty
  std::string host;
  uint16_t port = 0;  // 0: the scheme's default (5432, 3306)
  std::string database;
  std::map<std::string, std::string> params;  // the query string
};

// kInvalidArgument for a malformed URL, an unknown scheme, or an unexpanded "{env}".
Result<StoreUrl> parse_store_url(std::string_view url);

// A server URL naming `database` instead of its own (user, host and parameters kept).
// REQUIRES: `url` parses as a postgresql or mysql URL.
std::string with_database(std::string_view url, const std::string& database);

// The URL without its password (for messages and logs).
std::string redact_store_url(std::string_view url);

}  // namespace backbone
