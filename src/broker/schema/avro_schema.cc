// Avro schemas: the definition checked by libavro, messages checked by walking a model of the
// schema (schema_check.h says why not libavro's own readers).
#include <avro.h>

#include <deque>
#include <map>
#include <nlohmann/json.hpp>

#include "broker/schema/schema_check.h"

namespace backbone::schema {
namespace {

using nlohmann::json;

// Deeper nesting than this in a message is refused (it would only exhaust the stack).
constexpr int kMaxDepth = 200;

struct Type {
  enum Kind {
    kNull,
    kBoolean,
    kInt,
    kLong,
    kFloat,
    kDouble,
    kBytes,
    kString,
    kRecord,
    kEnum,
    kArray,
    kMap,
    kUnion,
    kFixed
  };
  Kind kind = kNull;
  std::string name;  // the full name of a record, enum or fixed; the primitive's otherwise
  struct Field {
    std::string name;
    const Type* type = nullptr;
    bool has_default = false;
  };
  std::vector<Field> fields;          // record
  std::vector<std::string> symbols;   // enum
  const Type* items = nullptr;        // array items, map values
  std::vector<const Type*> branches;  // union
  int64_t size = 0;                   // fixed
};

const std::map<std::string_view, Type::Kind> kPrimitives = {
    {"null", Type::kNull},   {"boolean", Type::kBoolean}, {"int", Type::kInt},
    {"long", Type::kLong},   {"float", Type::kFloat},     {"double", Type::kDouble},
    {"bytes", Type::kBytes}, {"string", Type::kString}};

// The schema as a graph of Types (named types may refer to themselves).
class Model {
 public:
  Result<const Type*> parse(const json& j, const std::string& ns) {
    if (j.is_string()) return named_or_primitive(j.get<std::string>(), ns);
    if (j.is_array()) {
      Type& t = add(Type::kUnion, "union");
      for (const json& b : j) {
        auto branch = parse(b, ns);
        if (!branch.ok()) return branch.error();
        t.branches.push_back(*branch);
      }
      return &t;
    }
    if (!j.is_object() || !j.contains("type"))
      return invalid_schema("a type is not a name, a list or an object with \"type\"");
    const json& type = j["type"];
    if (!type.is_string()) return parse(type, ns);
    const std::string kind = type.get<std::string>();
    if (kind == "record" || kind == "error" || kind == "enum" || kind == "fixed") {
      if (!j.contains("name") || !j["name"].is_string())
        return invalid_schema("a " + kind + " has no name");
      std::string name = j["name"].get<std::string>();
      std::string space = ns;
      if (j.contains("namespace") && j["namespace"].is_string())
        space = j["namespace"].get<std::string>();
      std::string full =
          name.find('.') != std::string::npos || space.empty() ? name : space + "." + name;
      if (auto dot = full.rfind('.'); dot != std::string::npos) space = full.substr(0, dot);
      // Refused here, before libavro sees it: libavro leaks the second definition.
      if (named_.count(full) || kPrimitives.count(full)) {
        return invalid_schema("the name " + full + " is defined twice");
      }
      Type& t = add(kind == "enum"    ? Type::kEnum
                    : kind == "fixed" ? Type::kFixed
                                      : Type::kRecord,
                    full);
      named_[full] = &t;
      if (t.kind == Type::kEnum) {
        for (const json& s : j.value("symbols", json::array())) {
          if (s.is_string()) t.symbols.push_back(s.get<std::string>());
        }
      } else if (t.kind == Type::kFixed) {
        t.size = j.value("size", int64_t{0});
      } else {
        for (const json& f : j.value("fields", json::array())) {
          if (!f.is_object() || !f.contains("name") || !f.contains("type")) {
            return invalid_schema("a field of " + full + " has no name or no type");
          }
          auto ft = parse(f["type"], space);
          if (!ft.ok()) return ft.error();
          t.fields.push_back({f["name"].get<std::string>(), *ft, f.contains("default")});
        }
      }
      return &t;
    }
    if (kind == "array" || kind == "map") {
      Type& t = add(kind == "array" ? Type::kArray : Type::kMap, kind);
      auto inner = parse(j.value(kind == "array" ? "items" : "values", json()), ns);
      if (!inner.ok()) return inner.error();
      t.items = *inner;
      return &t;
    }
    return named_or_primitive(kind, ns);
  }

 private:
  Type& add(Type::Kind kind, std::string name) {
    nodes_.push_back(Type{});
    nodes_.back().kind = kind;
    nodes_.back().name = std::move(name);
    return nodes_.back();
  }
  Result<const Type*> named_or_primitive(const std::string& name, const std::string& ns) {
    if (auto p = kPrimitives.find(name); p != kPrimitives.end()) return &add(p->second, name);
    if (name.find('.') == std::string::npos && !ns.empty()) {
      if (auto n = named_.find(ns + "." + name); n != named_.end()) return n->second;
    }
    if (auto n = named_.find(name); n != named_.end()) return n->second;
    return invalid_schema("\"" + name + "\" names no type");
  }
  std::deque<Type> nodes_;
  std::map<std::string, const Type*> named_;
};

// --- JSON encoding ---

// The code points of a UTF-8 string, each below 256 (Avro's JSON form of bytes); nullopt if not.
std::optional<size_t> latin1_length(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < s.size()) {
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  return n;
}

Result<void> check_json(const Type& t, const json& v, const std::string& at, int depth) {
  auto wrong = [&](const std::string& what) { return invalid_schema("at " + at + ": " + what); };
  if (depth > kMaxDepth) return wrong("nested deeper than " + std::to_string(kMaxDepth));
  switch (t.kind) {
    case Type::kNull:
      return v.is_null() ? Result<void>{} : wrong("expected null");
    case Type::kBoolean:
      return v.is_boolean() ? Result<void>{} : wrong("expected a boolean");
    case Type::kInt:
      if (v.is_number_integer()) {
        const bool fits = v.is_number_unsigned()
                              ? v.get<uint64_t>() <= INT32_MAX
                              : v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
        if (fits) return {};
      }
      return wrong("expected an int (32 bits)");
    case Type::kLong:
      if (v.is_number_integer() && (!v.is_number_unsigned() || v.get<uint64_t>() <= INT64_MAX))
        return {};
      return wrong("expected a long (64 bits)");
    case Type::kFloat:
    case Type::kDouble:
      return v.is_number() ? Result<void>{} : wrong("expected a number");
    case Type::kString:
      return v.is_string() ? Result<void>{} : wrong("expected a string");
    case Type::kBytes:
      if (v.is_string() && latin1_length(v.get_ref<const std::string&>())) return {};
      return wrong("expected bytes (a string of code points below 256)");
    case Type::kFixed:
      if (v.is_string() &&
          latin1_length(v.get_ref<const std::string&>()) == static_cast<size_t>(t.size))
        return {};
      return wrong("expected " + std::to_string(t.size) + " bytes of " + t.name);
    case Type::kEnum:
      if (v.is_string() && std::find(t.symbols.begin(), t.symbols.end(),
                                     v.get_ref<const std::string&>()) != t.symbols.end()) {
        return {};
      }
      return wrong("expected a symbol of " + t.name);
    case Type::kArray: {
      if (!v.is_array()) return wrong("expected an array");
      size_t i = 0;
      for (const json& item : v)
        BACKBONE_TRY(check_json(*t.items, item, at + "[" + std::to_string(i++) + "]", depth + 1));
      return {};
    }
    case Type::kMap:
      if (!v.is_object()) return wrong("expected a map (an object)");
      for (const auto& [k, item] : v.items())
        BACKBONE_TRY(check_json(*t.items, item, at + "." + k, depth + 1));
      return {};
    case Type::kRecord: {
      if (!v.is_object()) return wrong("expected a record " + t.name + " (an object)");
      for (const Type::Field& f : t.fields) {
        auto it = v.find(f.name);
        if (it == v.end()) {
          if (!f.has_default) return wrong("field \"" + f.name + "\" of " + t.name + " is missing");
          continue;
        }
        BACKBONE_TRY(check_json(*f.type, *it, at + "." + f.name, depth + 1));
      }
      return {};
    }
    case Type::kUnion: {
      if (v.is_null()) {
        for (const Type* b : t.branches) {
          if (b->kind == Type::kNull) return {};
        }
        return wrong("null is not a branch of the union");
      }
      if (!v.is_object() || v.size() != 1)
        return wrong("expected a union value: null or {\"<type>\": value}");
      const std::string& branch = v.begin().key();
      const json& inner = v.begin().value();
      for (const Type* b : t.branches) {
        if (b->name == branch) return check_json(*b, inner, at + "." + branch, depth + 1);
      }
      return wrong("\"" + branch + "\" is not a branch of the union");
    }
  }
  return wrong("unknown type");
}

// --- binary encoding ---

class BinaryReader {
 public:
  explicit BinaryReader(std::string_view data) : data_(data) {}
  bool at_end() const { return pos_ == data_.size(); }
  size_t pos() const { return pos_; }

  Result<int64_t> varint(int max_bytes) {
    uint64_t v = 0;
    for (int shift = 0, i = 0; i < max_bytes; ++i, shift += 7) {
      if (pos_ >= data_.size()) return invalid_schema("the data ends inside a number");
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return static_cast<int64_t>((v >> 1) ^ -(v & 1));  // zig-zag
    }
    return invalid_schema("a number is longer than its type allows, at byte " +
                          std::to_string(pos_));
  }
  Result<unsigned> byte() {
    if (pos_ >= data_.size()) return invalid_schema("the data ends inside a boolean");
    return static_cast<unsigned char>(data_[pos_++]);
  }
  Result<void> skip(int64_t n) {
    if (n < 0 || static_cast<uint64_t>(n) > data_.size() - pos_) {
      return invalid_schema("a length of " + std::to_string(n) + " at byte " +
                            std::to_string(pos_) + " runs past the end of the data");
    }
    pos_ += static_cast<size_t>(n);
    return {};
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

Result<void> check_binary(const Type& t, BinaryReader& r, int depth) {
  if (depth > kMaxDepth) return invalid_schema("nested deeper than " + std::to_string(kMaxDepth));
  switch (t.kind) {
    case Type::kNull:
      return {};
    case Type::kBoolean: {
      auto b = r.byte();
      if (!b.ok()) return b.error();
      if (*b > 1) return invalid_schema("a boolean byte is " + std::to_string(*b) + ", not 0 or 1");
      return {};
    }
    case Type::kInt: {
      auto v = r.varint(5);
      if (!v.ok()) return v.error();
      if (*v < INT32_MIN || *v > INT32_MAX) return invalid_schema("an int out of 32 bits");
      return {};
    }
    case Type::kLong:
      return r.varint(10).ok() ? Result<void>{} : invalid_schema("a long is cut or too long");
    case Type::kFloat:
      return r.skip(4);
    case Type::kDouble:
      return r.skip(8);
    case Type::kBytes:
    case Type::kString: {
      auto n = r.varint(10);
      if (!n.ok()) return n.error();
      return r.skip(*n);
    }
    case Type::kFixed:
      return r.skip(t.size);
    case Type::kEnum: {
      auto i = r.varint(5);
      if (!i.ok()) return i.error();
      if (*i < 0 || *i >= static_cast<int64_t>(t.symbols.size()))
        return invalid_schema("enum index " + std::to_string(*i) + " of " + t.name +
                              " is out of range");
      return {};
    }
    case Type::kArray:
    case Type::kMap:
      for (;;) {
        auto count = r.varint(10);
        if (!count.ok()) return count.error();
        if (*count == 0) return {};
        if (*count < 0) {
          auto bytes = r.varint(10);  // the block's size, which a reader may use to skip it
          if (!bytes.ok()) return bytes.error();
          *count = -*count;
        }
        if (*count > static_cast<int64_t>(kMaxMessageBytes))
          return invalid_schema("a block of " + std::to_string(*count) +
                                " items is more than a message holds");
        for (int64_t i = 0; i < *count; ++i) {
          if (t.kind == Type::kMap) {
            auto key = r.varint(10);
            if (!key.ok()) return key.error();
            BACKBONE_TRY(r.skip(*key));
          }
          BACKBONE_TRY(check_binary(*t.items, r, depth + 1));
        }
      }
    case Type::kRecord:
      for (const Type::Field& f : t.fields) BACKBONE_TRY(check_binary(*f.type, r, depth + 1));
      return {};
    case Type::kUnion: {
      auto i = r.varint(10);
      if (!i.ok()) return i.error();
      if (*i < 0 || *i >= static_cast<int64_t>(t.branches.size()))
        return invalid_schema("union branch " + std::to_string(*i) + " is out of range");
      return check_binary(*t.branches[static_cast<size_t>(*i)], r, depth + 1);
    }
  }
  return invalid_schema("unknown type");
}

class AvroSchema final : public CompiledSchema {
 public:
  AvroSchema(std::unique_ptr<Model> model, const Type* root)
      : model_(std::move(model)), root_(root) {}

  Result<void> check(SchemaEncoding encoding, std::string_view data) const override {
    if (encoding == SchemaEncoding::kBinary) {
      BinaryReader r(data);
      BACKBONE_TRY(check_binary(*root_, r, 0));
      if (!r.at_end())
        return invalid_schema(std::to_string(data.size() - r.pos()) + " bytes follow the message");
      return {};
    }
    json v = json::parse(data, nullptr, false);
    if (v.is_discarded()) return invalid_schema("the message is not JSON");
    return check_json(*root_, v, "$", 0);
  }

 private:
  std::unique_ptr<Model> model_;
  const Type* root_;
};

}  // namespace

Result<std::shared_ptr<const CompiledSchema>> compile_avro(std::string_view definition) {
  // The model first: it refuses some definitions on whose refusal libavro leaks (a name defined
  // twice), and libavro, the authority on what is Avro, sees only what it accepted.
  json j = json::parse(definition, nullptr, false);
  if (j.is_discarded()) return invalid_schema("not an Avro schema: not JSON");
  auto model = std::make_unique<Model>();
  auto root = model->parse(j, "");
  if (!root.ok()) return root.error();
  avro_schema_t parsed = nullptr;
  if (avro_schema_from_json_length(definition.data(), definition.size(), &parsed) != 0) {
    return invalid_schema(std::string("not an Avro schema: ") + avro_strerror());
  }
  avro_schema_decref(parsed);
  return std::shared_ptr<const CompiledSchema>(
      std::make_shared<AvroSchema>(std::move(model), *root));
}

}  // namespace backbone::schema
