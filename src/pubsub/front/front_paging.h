// One page of a sorted list of names, for the List calls of the Pub/Sub front. The page token
// is the last name of the page before: a list that changes between pages neither repeats nor
// skips a name that stayed.
//
// Thread-safety: a plain function.
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backbone/result.h"

namespace backbone::pubsub {

struct Page {
  std::span<const std::string> names;
  std::string next_token;  // empty on the last page
};

// `sorted` must be sorted. page_size 0 means the default (100); at most 1000; negative is
// kInvalidArgument.
Result<Page> page_of(std::span<const std::string> sorted, int page_size,
                     std::string_view page_token);

template <typename T>
struct ItemPage {
  std::vector<const T*> items;
  std::string next_token;
};

// The page of the items of `all` (topics or subscriptions: anything with a `name`) that `keep`
// accepts, in the order of their names.
template <typename T, typename Keep>
Result<ItemPage<T>> page_of(const std::vector<T>& all, Keep keep, int page_size,
                            std::string_view page_token) {
  std::vector<const T*> kept;
  for (const T& x : all) {
    if (keep(x)) kept.push_back(&x);
  }
  std::sort(kept.begin(), kept.end(), [](const T* a, const T* b) { return a->name < b->name; });
  std::vector<std::string> names;
  for (const T* x : kept) names.push_back(x->name);
  auto page = page_of(std::span<const std::string>(names), page_size, page_token);
  if (!page.ok()) return page.error();
  const auto first = kept.begin() + (page->names.data() - names.data());
  ItemPage<T> out;
  out.items.assign(first, first + static_cast<std::ptrdiff_t>(page->names.size()));
  out.next_token = page->next_token;
  return out;
}

}  // namespace backbone::pubsub
