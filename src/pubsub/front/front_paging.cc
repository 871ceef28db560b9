#include "pubsub/front/front_paging.h"

#include <algorithm>

namespace backbone::pubsub {

Result<Page> page_of(std::span<const std::string> sorted, int page_size,
                     std::string_view page_token) {
  if (page_size < 0) return make_error(Errc::kInvalidArgument, "must not be negative", "page_size");
  const size_t size = page_size == 0 ? 100 : std::min(page_size, 1000);
  const auto begin = page_token.empty()
                         ? sorted.begin()
                         : std::upper_bound(sorted.begin(), sorted.end(), page_token,
                                            [](std::string_view t, const std::string& n) {
                                              return t < std::string_view(n);
                                            });
  const size_t left = static_cast<size_t>(sorted.end() - begin);
  Page out;
  out.names = std::span<const std::string>(begin, begin + std::min(size, left));
  if (left > size) out.next_token = out.names.back();
  return out;
}

}  // namespace backbone::pubsub
