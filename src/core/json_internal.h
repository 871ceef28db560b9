// Internal JSON helpers on nlohmann::json. Kept out of include/ so that the heavy template
// header reaches only the .cc files that need it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "backbone/event.h"
#include "backbone/result.h"

namespace backbone::json_internal {

// Parses strict I-JSON: malformed text, duplicate keys and nesting deeper than kMaxJsonDepth
// are kInvalidArgument, with the byte offset in the message.
Result<nlohmann::json> parse_strict(std::string_view text);

// Appends the RFC 8785 form of `value`. Fails (kInvalidArgument) on integers outside ±(2^53-1);
// `where` accumulates a JSON-pointer-like path for that message.
Result<void> write_canonical(const nlohmann::json& value, std::string& out);
// The canonical text of a value known to be valid (read from canonical JSON, or built of such
// values). REQUIRES: write_canonical succeeds on it.
std::string canonical_text(const nlohmann::json& value);

// A short description of a JSON value's type for error messages ("a string", "an array", ...).
const char* type_phrase(const nlohmann::json& value);

// Reading a document that came from elsewhere (a server's answer, a file): each accessor checks
// that `j` is an object and that its member `name` is there with the wanted type, and fails
// with kDataLoss otherwise, naming `what` (for example "GET /v1/envs/sandbox/topology") and the
// member. Nothing throws. T: std::string, bool, int64_t, uint64_t (a non-negative integer),
// double (any number), nlohmann::json (any value).
template <class T>
Result<T> field(const nlohmann::json& j, std::string_view name, std::string_view what);
// The same, where the member may be missing or null: nullopt then.
template <class T>
Result<std::optional<T>> optional_field(const nlohmann::json& j, std::string_view name,
                                        std::string_view what);
// Member `name`, which must be an array (`items` of it) or an object.
Result<const nlohmann::json*> array_field(const nlohmann::json& j, std::string_view name,
                                          std::string_view what);
Result<const nlohmann::json*> object_field(const nlohmann::json& j, std::string_view name,
                                           std::string_view what);

// An event draft from a parsed event object (what parse_event_draft does after parsing), for
// callers that parsed a larger document already (a batch).
Result<EventDraft> event_draft_from_json(const nlohmann::json& obj);

}  // namespace backbone::json_internal
