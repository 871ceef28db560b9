// Percent-decoding of URL parts (user, password, database, query values), shared by the store
// and broker URL parsers.
//
// Thread-safety: a plain function.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace backbone {

// `s` with every %XX replaced by its byte; nullopt on a malformed escape ("%4", "%G1").
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace backbone
