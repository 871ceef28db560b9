#include "console/assets.h"

#include <algorithm>

#include "backbone/console_assets.h"

namespace backbone::console {
namespace {

std::string_view content_type(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

}  // namespace

std::optional<Asset> find_asset(std::string_view name) {
  for (const auto& f : generated::kFiles) {
    if (f.name == name) return Asset{f.name, content_type(f.name), f.body};
  }
  return std::nullopt;
}

std::vector<Asset> assets() {
  std::vector<Asset> out;
  for (const auto& f : generated::kFiles) out.push_back({f.name, content_type(f.name), f.body});
  std::sort(out.begin(), out.end(), [](const Asset& a, const Asset& b) { return a.name < b.name; });
  return out;
}

const std::vector<std::pair<std::string_view, std::string_view>>& security_headers() {
  static const std::vector<std::pair<std::string_view, std::string_view>> kHeaders = {
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"X-Frame-Options", "DENY"},
      {"Cache-Control", "no-cache"},
  };
  return kHeaders;
}

}  // namespace backbone::console
