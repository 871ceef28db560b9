#include "store/open/store_open.h"

#include "backbone/event_store.h"
#include "store/mysql/mysql_dialect.h"
#include "store/postgres/pg_dialect.h"
#include "store/sql/sql_event_store.h"
#include "store/sqlite/sqlite_event_store.h"

namespace backbone {

const sql::SqlDialect* server_store_dialect(const StoreUrl& url) {
  if (url.scheme == "postgresql") return &sql::postgres_dialect();
  if (url.scheme == "mysql") return &sql::mysql_dialect();
  return nullptr;
}

const sql::SqlDialect* server_store_dialect(std::string_view url) {
  auto parsed = parse_store_url(url);
  return parsed.ok() ? server_store_dialect(*parsed) : nullptr;
}

Result<std::unique_ptr<EventStore>> EventStore::open(const StoreOptions& options) {
  auto url = parse_store_url(options.url);
  if (!url.ok()) return url.error();
  if (url->scheme == "sqlite") return sqlite::open_sqlite_store(url->path, options);
  if (const sql::SqlDialect* d = server_store_dialect(*url)) {
    return sql::open_server_store(*d, *url, options);
  }
  return make_error(Errc::kInvalidArgument, "no backend for scheme " + url->scheme, "store");
}

}  // namespace backbone
