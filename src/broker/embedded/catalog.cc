#include "broker/embedded/catalog.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "broker/delivery/config_json.h"
#include "broker/embedded/file_io.h"

namespace backbone::embedded {
namespace {

using nlohmann::json;

json sub_to_json(const CatalogSubscription& s) {
  json j = delivery::subscription_config_to_json(s.config);
  j["id"] = s.id;
  j["topic_id"] = s.topic_id;
  j["start_offset"] = s.start_offset;
  return j;
}

CatalogSubscription sub_from_json(const json& j) {
  CatalogSubscription s;
  s.id = j.at("id").get<uint32_t>();
  s.topic_id = j.at("topic_id").get<uint32_t>();
  s.start_offset = j.at("start_offset").get<uint64_t>();
  s.config = delivery::subscription_config_from_json(j);
  return s;
}

json snapshot_to_json(const CatalogSnapshot& s) {
  json j = delivery::snapshot_config_to_json(s.config);
  j["topic_id"] = s.topic_id;
  j["lwm"] = s.lwm;
  j["acked"] = s.acked;
  return j;
}

CatalogSnapshot snapshot_from_json(const json& j) {
  CatalogSnapshot s;
  s.config = delivery::snapshot_config_from_json(j);
  s.topic_id = j.at("topic_id").get<uint32_t>();
  s.lwm = j.at("lwm").get<uint64_t>();
  s.acked = j.at("acked").get<std::vector<uint64_t>>();
  return s;
}

}  // namespace

Result<Catalog> load_catalog(const std::string& path) {
  Catalog c;
  if (!std::filesystem::exists(path)) return c;
  auto text = read_file(path);
  if (!text.ok()) return text.error();
  try {
    const json j = json::parse(*text);
    c.next_id = j.at("next_id").get<uint32_t>();
    for (const auto& t : j.at("topics")) {
      c.topics.push_back({t.at("id").get<uint32_t>(), delivery::topic_config_from_json(t)});
    }
    for (const auto& s : j.at("subscriptions")) c.subscriptions.push_back(sub_from_json(s));
    if (j.contains("snapshots")) {
      for (const auto& s : j["snapshots"]) c.snapshots.push_back(snapshot_from_json(s));
    }
    if (j.contains("schemas")) {
      for (const auto& s : j["schemas"]) {
        c.schemas.push_back(delivery::schema_revisions_from_json(s));
      }
    }
  } catch (const json::exception& e) {
    return make_error(Errc::kDataLoss, "broker catalog " + path + " is damaged: " + e.what());
  }
  return c;
}

Result<void> save_catalog(const std::string& path, const Catalog& c) {
  json j = {{"format", 1},
            {"next_id", c.next_id},
            {"topics", json::array()},
            {"subscriptions", json::array()}};
  for (const auto& t : c.topics) {
    json jt = delivery::topic_config_to_json(t.config);
    jt["id"] = t.id;
    j["topics"].push_back(std::move(jt));
  }
  for (const auto& s : c.subscriptions) j["subscriptions"].push_back(sub_to_json(s));
  if (!c.snapshots.empty()) {
    j["snapshots"] = json::array();
    for (const auto& s : c.snapshots) j["snapshots"].push_back(snapshot_to_json(s));
  }
  if (!c.schemas.empty()) {
    j["schemas"] = json::array();
    for (const auto& s : c.schemas) j["schemas"].push_back(delivery::schema_revisions_to_json(s));
  }
  return replace_file(path, j.dump(2) + "\n");
}

}  // namespace backbone::embedded
