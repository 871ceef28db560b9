#include "backbone/event_store.h"

#include "store/sql/sql_event_store.h"
#include "store/sqlite/sqlite_event_store.h"
#include "store/store_url.h"

namespace backbone {

Result<std::unique_ptr<EventStore>> EventStore::open(const StoreOptions& options) {
  auto url = parse_store_url(options.url);
  if (!url.ok()) return url.error();
  if (url->scheme == "sqlite") return sqlite::open_sqlite_store(url->path, options);
  if (url->scheme == "postgresql" || url->scheme == "mysql") {
    return sql::open_server_store(*url, options);
  }
  return make_error(Errc::kInvalidArgument, "no backend for scheme " + url->scheme, "store");
}

}  // namespace backbone
