// Checked reads of JSON documents from elsewhere (json_internal.h).
#include <cstdint>

#include "core/json_internal.h"

namespace backbone::json_internal {
namespace {

using nlohmann::json;

Error malformed(std::string_view what, std::string_view name, const std::string& problem) {
  return make_error(Errc::kDataLoss,
                    std::string(what) + ": the answer's \"" + std::string(name) + "\" " + problem);
}

template <class T>
const char* wanted();
template <>
const char* wanted<std::string>() {
  return "a string";
}
template <>
const char* wanted<bool>() {
  return "a boolean";
}
template <>
const char* wanted<int64_t>() {
  return "an integer";
}
template <>
const char* wanted<uint64_t>() {
  return "a non-negative integer";
}
template <>
const char* wanted<double>() {
  return "a number";
}
template <>
const char* wanted<json>() {
  return "a value";
}

template <class T>
bool has_type(const json& v) {
  if constexpr (std::is_same_v<T, std::string>) return v.is_string();
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  if constexpr (std::is_same_v<T, int64_t>) {
    return v.is_number_integer() &&
           (!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX));
  }
  if constexpr (std::is_same_v<T, uint64_t>) return v.is_number_unsigned();
  if constexpr (std::is_same_v<T, double>) return v.is_number();
  if constexpr (std::is_same_v<T, json>) return true;
  return false;
}

Result<const json*> member(const json& j, std::string_view name, std::string_view what) {
  if (!j.is_object()) {
    return make_error(Errc::kDataLoss, std::string(what) + ": the answer is " + type_phrase(j) +
                                           ", not an object (looking for \"" + std::string(name) +
                                           "\")");
  }
  auto it = j.find(name);
  if (it == j.end()) return static_cast<const json*>(nullptr);
  return &*it;
}

}  // namespace

template <class T>
Result<std::optional<T>> optional_field(const json& j, std::string_view name,
                                        std::string_view what) {
  auto m = member(j, name, what);
  if (!m.ok()) return m.error();
  if (!*m || (*m)->is_null()) return std::optional<T>();
  if (!has_type<T>(**m)) {
    return malformed(what, name, std::string("is ") + type_phrase(**m) + ", not " + wanted<T>());
  }
  return std::optional<T>((*m)->template get<T>());
}

template <class T>
Result<T> field(const json& j, std::string_view name, std::string_view what) {
  auto v = optional_field<T>(j, name, what);
  if (!v.ok()) return v.error();
  if (!*v) return malformed(what, name, "is missing");
  return std::move(**v);
}

template Result<std::string> field(const json&, std::string_view, std::string_view);
template Result<bool> field(const json&, std::string_view, std::string_view);
template Result<int64_t> field(const json&, std::string_view, std::string_view);
template Result<uint64_t> field(const json&, std::string_view, std::string_view);
template Result<double> field(const json&, std::string_view, std::string_view);
template Result<json> field(const json&, std::string_view, std::string_view);
template Result<std::optional<std::string>> optional_field(const json&, std::string_view,
                                                           std::string_view);
template Result<std::optional<bool>> optional_field(const json&, std::string_view,
                                                    std::string_view);
template Result<std::optional<int64_t>> optional_field(const json&, std::string_view,
                                                       std::string_view);
template Result<std::optional<uint64_t>> optional_field(const json&, std::string_view,
                                                        std::string_view);
template Result<std::optional<double>> optional_field(const json&, std::string_view,
                                                      std::string_view);
template Result<std::optional<json>> optional_field(const json&, std::string_view,
                                                    std::string_view);

namespace {

Result<const json*> container_field(const json& j, std::string_view name, std::string_view what,
                                    bool array) {
  auto m = member(j, name, what);
  if (!m.ok()) return m.error();
  if (!*m) return malformed(what, name, "is missing");
  if (array ? !(*m)->is_array() : !(*m)->is_object()) {
    return malformed(
        what, name,
        std::string("is ") + type_phrase(**m) + ", not " + (array ? "an array" : "an object"));
  }
  return *m;
}

}  // namespace

Result<const json*> array_field(const json& j, std::string_view name, std::string_view what) {
  return container_field(j, name, what, true);
}

Result<const json*> object_field(const json& j, std::string_view name, std::string_view what) {
  return container_field(j, name, what, false);
}

}  // namespace backbone::json_internal
