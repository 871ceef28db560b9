// The SQLite backend of the EventStore port (`sqlite:///path`): the embedded default.
//
// One connection per store object, serialized by a mutex; several processes may open the same
// file (WAL, a busy timeout, BEGIN IMMEDIATE for every write so that the audit chain is
// extended by one writer at a time).
#pragma once

#include <memory>
#include <string>

#include "backbone/event_store.h"

namespace backbone::sqlite {

Result<std::unique_ptr<EventStore>> open_sqlite_store(const std::string& path,
                                                      const StoreOptions& options);

}  // namespace backbone::sqlite
