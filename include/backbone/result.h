// Result<T>: the channel for expected failures (STYLE.md, habit 3).
//
// A Result<T> holds either a value or an Error. An Error carries a typed code (Errc), a message
// meant for people, an optional `where` that names the offending field, and, when the error is
// about one item of a batch, that item's list and index as numbers (Error::item). location()
// renders both for people ("events[3].record_type"); code reads the typed fields and never
// parses the text back. No exception crosses the public API: expected failures come back as
// Result, and broken invariants abort through BACKBONE_ASSERT.
//
// Thread-safety: a Result is a plain value; distinct objects may be used from distinct threads.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

namespace backbone {

// The typed error codes of the whole project. They map, in one place (error.h), to HTTP status
// codes, gRPC codes and CLI exit codes.
enum class Errc {
  kOk = 0,
  kInvalidArgument,   // bad input: malformed JSON, a wrong type, a pattern not matched
  kTooLarge,          // a value or body over its limit
  kUnsupportedMedia,  // a body of the wrong content type
  kNotFound,          // unknown id, record or environment
  kAlreadyExists,     // a create of something that exists
  kImmutable,         // an update or delete of an immutable row
  kConflict,          // an optimistic check failed
  kFenced,            // a process acted for a bucket that another owns now (doc/scale_out.md)
  kPermissionDenied,  // a role or environment may not do this
  kUnauthenticated,   // no or a bad credential
  kUnavailable,       // a backend is down or busy; retriable
  kDataLoss,          // stored data failed a check (for example the audit chain)
  kInternal,          // a bug or an unexpected backend answer
};

// The name of a code, as used in JSON error bodies ("invalid_argument", ...).
const char* errc_name(Errc code);

// std::error_code integration: Errc values live in backbone_category().
const std::error_category& backbone_category();
inline std::error_code make_error_code(Errc e) {
  return {static_cast<int>(e), backbone_category()};
}

// Which item of a batch an error is about: the list's name ("events", "messages", "audit") and
// the item's index in it.
struct ItemIndex {
  const char* list = "events";  // a string literal
  size_t index = 0;
  bool operator==(const ItemIndex& o) const {
    return index == o.index && std::string_view(list) == o.list;
  }
};

struct Error {
  Errc code = Errc::kInternal;
  std::string message;
  std::string where;  // the field at fault (within `item` when that is set); may be empty
  std::optional<ItemIndex> item;  // the batch item at fault, if the error is about one

  // "events[3].record_type", "events[3]", "record_type", or "" when the error names nothing.
  std::string location() const {
    if (!item) return where;
    std::string s = std::string(item->list) + "[" + std::to_string(item->index) + "]";
    return where.empty() ? s : s + "." + where;
  }
  // "location: message", or just the message.
  std::string describe() const {
    const std::string at = location();
    return at.empty() ? message : at + ": " + message;
  }
  // This error, as being about item `index` of `list`.
  Error at_item(const char* list, size_t index) && {
    item = ItemIndex{list, index};
    return std::move(*this);
  }
};

inline Error make_error(Errc code, std::string message, std::string where = {}) {
  return Error{code, std::move(message), std::move(where)};
}

[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "backbone: invariant broken: %s at %s:%d\n", expr, file, line);
  std::abort();
}
#define BACKBONE_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::backbone::assert_fail(#expr, __FILE__, __LINE__))

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // REQUIRES: ok().
  T& value() & { return check(), std::get<0>(v_); }
  const T& value() const& { return check(), std::get<0>(v_); }
  T&& value() && { return check(), std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // By value, so that `for (auto& x : *make())` keeps the temporary's value alive.
  T operator*() && { return std::move(*this).value(); }

  // REQUIRES: !ok().
  const Error& error() const {
    BACKBONE_ASSERT(!ok());
    return std::get<1>(v_);
  }
  Errc code() const { return ok() ? Errc::kOk : error().code; }

 private:
  void check() const {
    if (!ok()) {
      std::fprintf(stderr, "backbone: value() of a failed Result: %s\n",
                   std::get<1>(v_).describe().c_str());
      std::abort();
    }
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT: implicit

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    BACKBONE_ASSERT(failed_);
    return error_;
  }
  Errc code() const { return ok() ? Errc::kOk : error_.code; }

 private:
  Error error_;
  bool failed_ = false;
};

// Returns early from the enclosing function with the error of `expr` when it failed.
#define BACKBONE_TRY(expr)                                               \
  do {                                                                   \
    auto&& backbone_try_result_ = (expr);                                \
    if (!backbone_try_result_.ok()) return backbone_try_result_.error(); \
  } while (0)

// `lhs = *expr`, or returns early with the error of `expr` when it failed:
//   BACKBONE_ASSIGN_OR_RETURN(const std::string name, field<std::string>(j, "name", what));
#define BACKBONE_ASSIGN_OR_RETURN(lhs, expr) \
  BACKBONE_ASSIGN_OR_RETURN_IMPL(BACKBONE_CONCAT(backbone_result_, __LINE__), lhs, expr)
#define BACKBONE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.error();                   \
  lhs = std::move(*tmp)
#define BACKBONE_CONCAT(a, b) BACKBONE_CONCAT_INNER(a, b)
#define BACKBONE_CONCAT_INNER(a, b) a##b

}  // namespace backbone

namespace std {
template <>
struct is_error_code_enum<backbone::Errc> : true_type {};
}  // namespace std
