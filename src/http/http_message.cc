#include "http/http_message.h"

#include <strings.h>

#include <algorithm>

#include "core/percent_decode.h"

namespace backbone::http {

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && ::strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

bool HttpRequest::has_param(std::string_view name) const {
  return params.find(std::string(name)) != params.end();
}

std::string HttpRequest::param(std::string_view name) const {
  auto it = params.find(std::string(name));
  return it == params.end() ? std::string() : it->second;
}

bool parse_target(std::string_view target, std::string& path,
                  std::multimap<std::string, std::string>& params) {
  const size_t q = target.find('?');
  auto p = percent_decode(target.substr(0, q));
  if (!p) return false;
  path = std::move(*p);
  params.clear();
  if (q == std::string_view::npos) return true;
  // In a query, '+' is a space (and "%2B" a '+').
  auto form = [](std::string_view text) {
    std::string spaced(text);
    std::replace(spaced.begin(), spaced.end(), '+', ' ');
    return percent_decode(spaced);
  };
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = form(pair.substr(0, eq));
    auto value = form(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) return false;
    params.emplace(std::move(*key), std::move(*value));
  }
  return true;
}

}  // namespace backbone::http
