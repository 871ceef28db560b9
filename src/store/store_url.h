// Parsing of store URLs (SPEC §6): sqlite:///abs/path, sqlite://relative/path, and, in later
// backends, postgresql://... and mysql://...
#pragma once

#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone {

struct StoreUrl {
  std::string scheme;  // "sqlite", ...
  std::string path;    // for sqlite: the file path
};

// kInvalidArgument for a malformed URL, an unknown scheme, or an unexpanded "{env}".
Result<StoreUrl> parse_store_url(std::string_view url);

}  // namespace backbone
