#include "store/store_url.h"

namespace backbone {

Result<StoreUrl> parse_store_url(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::kInvalidArgument, "store URL \"" + std::string(url) + "\": " + why,
                      "store");
  };
  if (url.find("{env}") != std::string_view::npos) return bad("\"{env}\" was not replaced");
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad("want scheme://..., e.g. sqlite://var/sandbox.db");
  StoreUrl out;
  out.scheme = std::string(url.substr(0, sep));
  const std::string_view rest = url.substr(sep + 3);
  if (out.scheme == "sqlite") {
    if (rest.empty()) return bad("no file path");
    out.path = std::string(rest);  // "/abs" for sqlite:///abs, "rel" for sqlite://rel
    return out;
  }
  if (out.scheme == "postgresql" || out.scheme == "postgres" || out.scheme == "mysql") {
    return make_error(Errc::kInvalidArgument,
                      "store URL scheme \"" + out.scheme + "\" is not built into this backbone yet",
                      "store");
  }
  return bad("unknown scheme \"" + out.scheme + "\" (want sqlite, postgresql or mysql)");
}

}  // namespace backbone
