#include "backbone/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

#include "backbone/clock.h"

namespace backbone::log {
namespace {

struct Sink {
  std::mutex mu;
  std::FILE* out = stderr;
  Format format = Format::kText;
};
Sink& sink() {
  static Sink s;
  return s;
}
std::atomic<int> g_min{static_cast<int>(Level::kWarn)};  // until configure()

// A JSON string literal; bytes that are not UTF-8 become U+FFFD (a log takes any input).
void append_json_string(std::string& out, std::string_view v) {
  out +=
      nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// logfmt: bare when it is a plain word, else a quoted JSON string.
void append_logfmt_value(std::string& out, const std::string& v) {
  bool bare = !v.empty();
  for (char c : v) bare = bare && c > ' ' && c != '"' && c != '=' && c != '\\' && c != 0x7f;
  if (bare) {
    out += v;
  } else {
    append_json_string(out, v);
  }
}

}  // namespace

Field::Field(std::string_view key, double value) : key_(key), number_(true) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  value_ = buf;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

Result<Format> parse_format(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "logfmt") return Format::kLogfmt;
  if (name == "json") return Format::kJson;
  return make_error(Errc::kInvalidArgument,
                    "must be text, logfmt or json, got \"" + std::string(name) + "\"",
                    "log.format");
}

void configure(Format format, Level min, std::FILE* out) {
  std::lock_guard lk(sink().mu);
  sink().format = format;
  sink().out = out;
  g_min = static_cast<int>(min);
}

bool enabled(Level level) { return static_cast<int>(level) >= g_min.load(); }

std::string render(Format format, Timestamp at, Level level, std::string_view event,
                   std::span<const Field> fields) {
  std::string out;
  out.reserve(128);
  const std::string time = at.to_rfc3339();
  switch (format) {
    case Format::kJson: {
      out += "{\"time\":\"" + time + "\",\"level\":\"" + level_name(level) + "\",\"msg\":";
      append_json_string(out, event);
      for (const Field& f : fields) {
        out += ',';
        append_json_string(out, f.key());
        out += ':';
        if (f.number()) {
          out += f.value();
        } else {
          append_json_string(out, f.value());
        }
      }
      out += '}';
      return out;
    }
    case Format::kLogfmt:
      out += "time=" + time + " level=" + level_name(level) + " msg=";
      append_logfmt_value(out, std::string(event));
      break;
    case Format::kText: {
      std::string name = level_name(level);
      name.resize(5, ' ');
      out += time + " " + name + " " + std::string(event);
      break;
    }
  }
  for (const Field& f : fields) {
    out += ' ';
    out += f.key();
    out += '=';
    append_logfmt_value(out, f.value());
  }
  return out;
}

void write_fields(Level level, std::string_view event, std::span<const Field> fields) {
  if (!enabled(level)) return;
  Sink& s = sink();
  const Format format = [&] {
    std::lock_guard lk(s.mu);
    return s.format;
  }();
  std::string line = render(format, SystemClock::instance().now(), level, event, fields);
  line += '\n';
  std::lock_guard lk(s.mu);
  std::fwrite(line.data(), 1, line.size(), s.out);
  std::fflush(s.out);
}

}  // namespace backbone::log
