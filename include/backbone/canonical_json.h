// RFC 8785 JSON Canonicalization Scheme (JCS), the byte form that fingerprints and the audit
// chain hash. doc/canonical_json.md describes it in prose.
//
// Input must be I-JSON (RFC 7493), as RFC 8785 §3 requires: valid UTF-8, no duplicate object
// keys, and integers within ±(2^53 - 1) so that no precision is lost when numbers become IEEE
// doubles. Anything else is refused with kInvalidArgument, never silently changed. Nesting
// deeper than kMaxJsonDepth is refused too.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone {

inline constexpr int kMaxJsonDepth = 64;

// Parses `json` and returns its canonical form.
Result<std::string> canonicalize_json(std::string_view json);

// Appends `utf8` as a JCS string literal (quotes included). REQUIRES: valid UTF-8.
void append_canonical_string(std::string& out, std::string_view utf8);

// The ECMAScript Number::toString form of `d` (RFC 8785 §3.2.2.3). REQUIRES: d is finite.
std::string format_canonical_number(double d);

}  // namespace backbone
