#include "pubsub/pubsub_names.h"

#include "backbone/broker.h"

namespace backbone::pubsub {
namespace {

constexpr std::string_view kProjects = "projects/";

const char* collection(ResourceKind kind) {
  switch (kind) {
    case ResourceKind::kTopic:
      return "topics";
    case ResourceKind::kSubscription:
      return "subscriptions";
    case ResourceKind::kSnapshot:
      return "snapshots";
    case ResourceKind::kSchema:
      return "schemas";
  }
  return "?";
}

// The project of "projects/P/...", and what follows it (after the '/'), or nothing.
Result<std::string_view> take_project(std::string_view& path, std::string_view project,
                                      const char* field, const char* want) {
  if (!path.starts_with(kProjects)) {
    return make_error(Errc::kInvalidArgument, std::string("must be ") + want, field);
  }
  path.remove_prefix(kProjects.size());
  const size_t slash = path.find('/');
  const std::string_view got = path.substr(0, slash);
  if (got.empty()) return make_error(Errc::kInvalidArgument, std::string("must be ") + want, field);
  if (got != project) {
    return make_error(Errc::kNotFound, "project \"" + std::string(got) +
                                           "\" is not served here; this server serves "
                                           "projects/" +
                                           std::string(project));
  }
  path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  return got;
}

}  // namespace

std::string project_path(std::string_view project) {
  std::string out(kProjects);
  out += project;
  return out;
}

std::string resource_path(std::string_view project, ResourceKind kind, std::string_view id) {
  std::string out = project_path(project);
  out += '/';
  out += collection(kind);
  out += '/';
  out += id;
  return out;
}

Result<std::string> parse_resource_path(std::string_view path, std::string_view project,
                                        ResourceKind kind, const char* field) {
  const std::string want = std::string("projects/{project}/") + collection(kind) + "/{name}";
  BACKBONE_TRY(take_project(path, project, field, want.c_str()));
  const std::string prefix = std::string(collection(kind)) + "/";
  if (!path.starts_with(prefix) || path.size() == prefix.size()) {
    return make_error(Errc::kInvalidArgument, "must be " + want, field);
  }
  std::string id(path.substr(prefix.size()));
  if (auto v = validate_resource_name(id, field); !v.ok()) return v.error();
  return id;
}

Result<void> check_project_path(std::string_view path, std::string_view project,
                                const char* field) {
  BACKBONE_TRY(take_project(path, project, field, "projects/{project}"));
  if (!path.empty()) return make_error(Errc::kInvalidArgument, "must be projects/{project}", field);
  return {};
}

}  // namespace backbone::pubsub
