// SHA-256 through OpenSSL's EVP interface, as lowercase hex.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace backbone {

// The lowercase hex SHA-256 (64 characters) of `data`.
std::string sha256_hex(std::string_view data);
// The lowercase hex SHA-256 of `a` followed by `b`, without joining them first.
std::string sha256_hex(std::string_view a, std::string_view b);

}  // namespace backbone
