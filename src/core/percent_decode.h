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

// Takes "user:password@" off the front of a URL's authority ("user:pw@host:port,..."), decoded
// into `user` and `password`, and leaves `authority` at what follows the last '@'. Without an
// '@', nothing changes. False on a malformed %-escape in either.
bool take_userinfo(std::string_view& authority, std::string& user, std::string& password);

}  // namespace backbone
