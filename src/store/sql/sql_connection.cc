#include "store/sql/sql_connection.h"

namespace backbone::sql {

std::optional<std::string> immutable_message(const std::string& server_message) {
  for (const char* m : kImmutableMessages) {
    if (server_message.find(m) != std::string::npos) return std::string(m);
  }
  return std::nullopt;
}

}  // namespace backbone::sql
