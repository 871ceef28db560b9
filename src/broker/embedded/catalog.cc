#include "broker/embedded/catalog.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "broker/delivery/config_json.h"

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

}  // namespace

Result<Catalog> load_catalog(const std::string& path) {
  Catalog c;
  std::ifstream in(path);
  if (!in) return c;
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    const json j = json::parse(buf.str());
    c.next_id = j.at("next_id").get<uint32_t>();
    for (const auto& t : j.at("topics")) {
      c.topics.push_back({t.at("id").get<uint32_t>(), delivery::topic_config_from_json(t)});
    }
    for (const auto& s : j.at("subscriptions")) c.subscriptions.push_back(sub_from_json(s));
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
  const std::string text = j.dump(2) + "\n";
  const std::string tmp = path + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  auto fail = [&](const char* what) {
    const std::string msg = std::string(what) + " " + tmp + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return make_error(Errc::kUnavailable, msg);
  };
  if (fd < 0) return fail("cannot create");
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return fail("cannot write");
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return make_error(Errc::kUnavailable, "cannot rename " + tmp + ": " + std::strerror(errno));
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace backbone::embedded
