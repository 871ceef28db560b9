// Pub/Sub resource names: "projects/{project}/topics/{topic}" and
// "projects/{project}/subscriptions/{subscription}", as the google.pubsub.v1 API spells them,
// and the short names that the Broker port uses ({topic}, {subscription}). Shared by the gRPC
// front and the pubsub:// backend.
//
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone::pubsub {

enum class ResourceKind { kTopic, kSubscription, kSnapshot, kSchema };

// "projects/P": the parent of the List calls.
std::string project_path(std::string_view project);
// "projects/P/topics/T" (or ".../subscriptions/S").
std::string resource_path(std::string_view project, ResourceKind kind, std::string_view id);
inline std::string topic_path(std::string_view project, std::string_view topic) {
  return resource_path(project, ResourceKind::kTopic, topic);
}
inline std::string snapshot_path(std::string_view project, std::string_view snapshot) {
  return resource_path(project, ResourceKind::kSnapshot, snapshot);
}
inline std::string schema_path(std::string_view project, std::string_view schema) {
  return resource_path(project, ResourceKind::kSchema, schema);
}
inline std::string subscription_path(std::string_view project, std::string_view subscription) {
  return resource_path(project, ResourceKind::kSubscription, subscription);
}

// The id in a full resource name of `kind` under `project`. `field` names the request field in
// errors. kInvalidArgument for a malformed name (or an id that the Broker port refuses);
// kNotFound for another project, naming the one served.
Result<std::string> parse_resource_path(std::string_view path, std::string_view project,
                                        ResourceKind kind, const char* field);

// The project of "projects/P" (the parent of a list call): kInvalidArgument or kNotFound as
// above.
Result<void> check_project_path(std::string_view path, std::string_view project, const char* field);

}  // namespace backbone::pubsub
