// The operators' console (doc/console.md): the files of the single-page web app that `serve`
// answers under /console, built into the binary from src/console/web/ (no CDN, no Node at run
// time), and the headers every one of them is sent with.
//
// Thread-safety: immutable data and pure functions.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace backbone::console {

struct Asset {
  std::string_view name;          // "index.html", "console.js", ...
  std::string_view content_type;  // from the name's extension
  std::string_view body;
};

// The file called `name` (no folders), if the console has one.
std::optional<Asset> find_asset(std::string_view name);
// Every file, in name order.
std::vector<Asset> assets();

// The headers of every console answer: a Content-Security-Policy that lets the page load only
// its own files and talk only to its own origin (no inline script or style, no frames), and no
// sniffing, referrer or caching of a stale copy.
const std::vector<std::pair<std::string_view, std::string_view>>& security_headers();

}  // namespace backbone::console
