#include "broker/embedded/catalog.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace backbone::embedded {
namespace {

using nlohmann::json;

json sub_to_json(const CatalogSubscription& s) {
  const SubscriptionConfig& c = s.config;
  json j = {{"id", s.id},
            {"topic_id", s.topic_id},
            {"start_offset", s.start_offset},
            {"name", c.name},
            {"topic", c.topic},
            {"ack_deadline_us", c.ack_deadline_us},
            {"ordered", c.ordered},
            {"retention_us", c.retention_us},
            {"labels", c.labels}};
  if (c.retry)
    j["retry"] = {{"min_us", c.retry->min_backoff_us}, {"max_us", c.retry->max_backoff_us}};
  if (c.dead_letter) {
    j["dead_letter"] = {{"topic", c.dead_letter->topic},
                        {"max_delivery_attempts", c.dead_letter->max_delivery_attempts}};
  }
  return j;
}

CatalogSubscription sub_from_json(const json& j) {
  CatalogSubscription s;
  s.id = j.at("id").get<uint32_t>();
  s.topic_id = j.at("topic_id").get<uint32_t>();
  s.start_offset = j.at("start_offset").get<uint64_t>();
  SubscriptionConfig& c = s.config;
  c.name = j.at("name").get<std::string>();
  c.topic = j.at("topic").get<std::string>();
  c.ack_deadline_us = j.at("ack_deadline_us").get<int64_t>();
  c.ordered = j.at("ordered").get<bool>();
  c.retention_us = j.at("retention_us").get<int64_t>();
  c.labels = j.at("labels").get<Attributes>();
  if (j.contains("retry")) {
    c.retry =
        RetryPolicy{j["retry"].at("min_us").get<int64_t>(), j["retry"].at("max_us").get<int64_t>()};
  }
  if (j.contains("dead_letter")) {
    c.dead_letter = DeadLetterPolicy{j["dead_letter"].at("topic").get<std::string>(),
                                     j["dead_letter"].at("max_delivery_attempts").get<int>()};
  }
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
      c.topics.push_back(
          {t.at("id").get<uint32_t>(),
           TopicConfig{t.at("name").get<std::string>(), t.at("labels").get<Attributes>()}});
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
    j["topics"].push_back({{"id", t.id}, {"name", t.config.name}, {"labels", t.config.labels}});
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
