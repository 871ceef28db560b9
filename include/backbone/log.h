// log: the process's log, one line per thing that happened, on stderr (stdout is the commands'
// output). A line is a name for what happened and its fields, in one of three forms
// (doc/logs.md):
//
//   text    2026-12-07T09:00:00.123456Z info  http.request method=GET path=/healthz status=200
//   logfmt  time=2026-12-07T09:00:00.123456Z level=info msg=http.request method=GET ...
//   json    {"time":"2026-12-07T09:00:00.123456Z","level":"info","msg":"http.request",...}
//
// Levels: debug (each merge decision, conflict, dead letter and replay; `-v`), info (each HTTP
// request, start, a clean stop), warn (a stage's failure, a risky setting), error (something
// did not happen that should have).
//
// Thread-safety: thread-safe; a line is written whole. configure() before threads log.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "backbone/result.h"
#include "backbone/timestamp.h"

namespace backbone::log {

enum class Level { kDebug, kInfo, kWarn, kError };
enum class Format { kText, kLogfmt, kJson };

const char* level_name(Level level);  // "debug", "info", "warn", "error"
// "text", "logfmt" or "json"; kInvalidArgument otherwise.
Result<Format> parse_format(std::string_view name);

// One field of a line: a string, or a number (written bare in JSON).
class Field {
 public:
  Field(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  Field(std::string_view key, const char* value) : key_(key), value_(value) {}
  Field(std::string_view key, const std::string& value) : key_(key), value_(value) {}
  Field(std::string_view key, int64_t value)
      : key_(key), value_(std::to_string(value)), number_(true) {}
  Field(std::string_view key, int value) : Field(key, static_cast<int64_t>(value)) {}
  Field(std::string_view key, uint64_t value)
      : key_(key), value_(std::to_string(value)), number_(true) {}
  Field(std::string_view key, double value);
  std::string_view key() const { return key_; }
  const std::string& value() const { return value_; }
  bool number() const { return number_; }

 private:
  std::string_view key_;
  std::string value_;
  bool number_ = false;
};

// Lines below `min` are dropped; the rest go to `out` (stderr by default) in `format`. Until it
// is called (a library, a test), warn and error lines go to stderr as text.
void configure(Format format, Level min, std::FILE* out = stderr);
bool enabled(Level level);
void write_fields(Level level, std::string_view event, std::span<const Field> fields);
inline void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  write_fields(level, event, std::span<const Field>(fields.begin(), fields.size()));
}
inline void debug(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::kDebug)) write(Level::kDebug, event, fields);
}
inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kInfo, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kWarn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kError, event, fields);
}

// The line, without its newline (for tests, and for write()).
std::string render(Format format, Timestamp at, Level level, std::string_view event,
                   std::span<const Field> fields);

}  // namespace backbone::log
