#include "pipeline/merge_rules.h"

#include <algorithm>

#include "core/json_internal.h"

namespace backbone::pipeline {
namespace {

using nlohmann::json;

// RFC 7396 merge patch.
void merge_patch(json& target, const json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      target.erase(it.key());
    } else {
      merge_patch(target[it.key()], it.value());
    }
  }
}

// Applies the effective patch to the parsed state, making `version` for each field it names.
void apply_patch(json& state, json& versions, const json& effective, uint64_t version) {
  merge_patch(state, effective);
  for (auto it = effective.begin(); it != effective.end(); ++it) versions[it.key()] = version;
}

Result<json> parse_stored(const std::string& text, const char* what) {
  auto j = json_internal::parse_strict(text);
  if (!j.ok() || !j->is_object()) {
    return make_error(Errc::kDataLoss,
                      std::string("stored record ") + what + " is not a JSON object");
  }
  return std::move(*j);
}

int rank(const std::vector<std::string>& priority, const std::string& source) {
  auto it = std::find(priority.begin(), priority.end(), source);
  return it == priority.end() ? static_cast<int>(priority.size())
                              : static_cast<int>(it - priority.begin());
}

}  // namespace

const char* conflict_policy_name(ConflictPolicy p) {
  switch (p) {
    case ConflictPolicy::kReject:
      return "reject";
    case ConflictPolicy::kLastWriterWins:
      return "last_writer_wins";
    case ConflictPolicy::kSourcePriority:
      return "source_priority";
  }
  return "reject";
}

Result<ConflictPolicy> parse_conflict_policy(std::string_view name) {
  for (auto p : {ConflictPolicy::kReject, ConflictPolicy::kLastWriterWins,
                 ConflictPolicy::kSourcePriority}) {
    if (name == conflict_policy_name(p)) return p;
  }
  return make_error(Errc::kInvalidArgument,
                    "unknown conflict policy \"" + std::string(name) +
                        "\" (want reject, last_writer_wins or source_priority)");
}

ConflictPolicy MergeSettings::policy_for(const std::string& record_type) const {
  auto it = policies.find(record_type);
  return it == policies.end() ? default_policy : it->second;
}

const char* merge_kind_name(MergeDecision::Kind kind) {
  switch (kind) {
    case MergeDecision::Kind::kFastForward:
      return "fast_forward";
    case MergeDecision::Kind::kRebased:
      return "rebased";
    case MergeDecision::Kind::kResolved:
      return "resolved";
    case MergeDecision::Kind::kRejected:
      return "rejected";
    case MergeDecision::Kind::kGap:
      return "gap";
    case MergeDecision::Kind::kAccepted:
      return "accepted";
  }
  return "fast_forward";
}

Result<MergeDecision> decide_merge(const Event& event, const RecordState& current,
                                   const MergeSettings& settings, const OriginLookup& origin) {
  MergeDecision d;
  d.next = current;
  d.effective_changes = "{}";
  const uint64_t base = event.base_version();
  if (base > current.version && !settings.accept) {
    d.kind = MergeDecision::Kind::kGap;
    d.detail = json_internal::canonical_text(
        json{{"reason", "gap"}, {"base_version", base}, {"record_version", current.version}});
    return d;
  }
  auto state = parse_stored(current.state, "state");
  if (!state.ok()) return state.error();
  auto versions = parse_stored(current.field_versions, "field_versions");
  if (!versions.ok()) return versions.error();
  auto changes = json_internal::parse_strict(event.changes());
  BACKBONE_ASSERT(changes.ok() && changes->is_object());

  // The fields changed since the event's base.
  std::vector<std::string> moved;
  for (auto it = changes->begin(); it != changes->end(); ++it) {
    const auto fv = versions->find(it.key());
    if (fv != versions->end() && fv->get<uint64_t>() > base) moved.push_back(it.key());
  }
  json effective = json::object();
  json resolution = json::object();
  if (settings.accept && base != current.version) {
    // An operator accepted it (dlq resolve --accept): its change applies on the current version
    // as it is, whatever moved since its base, or whatever is missing before it.
    d.kind = MergeDecision::Kind::kAccepted;
    effective = *changes;
    d.detail = json_internal::canonical_text(json{{"reason", "accepted"},
                                                  {"base_version", base},
                                                  {"record_version", current.version},
                                                  {"conflicting_fields", moved}});
  } else if (base == current.version) {
    d.kind = MergeDecision::Kind::kFastForward;
    effective = *changes;
  } else if (moved.empty()) {
    d.kind = MergeDecision::Kind::kRebased;
    effective = *changes;
  } else {
    d.conflicting_fields = moved;
    const ConflictPolicy policy = settings.policy_for(event.record_type());
    if (policy == ConflictPolicy::kReject) {
      d.kind = MergeDecision::Kind::kRejected;
      d.detail = json_internal::canonical_text(json{{"reason", "conflict"},
                                                    {"policy", "reject"},
                                                    {"base_version", base},
                                                    {"record_version", current.version},
                                                    {"conflicting_fields", moved}});
      return d;
    }
    d.kind = MergeDecision::Kind::kResolved;
    for (auto it = changes->begin(); it != changes->end(); ++it) {
      if (std::find(moved.begin(), moved.end(), it.key()) == moved.end()) {
        effective[it.key()] = it.value();
        continue;
      }
      auto o = origin((*versions)[it.key()].get<uint64_t>());
      if (!o.ok()) return o.error();
      bool ours;
      if (policy == ConflictPolicy::kLastWriterWins) {
        ours = event.timestamp() > o->timestamp;
      } else {
        ours = rank(settings.source_priority, event.source()) <
               rank(settings.source_priority, o->source);
      }
      resolution[it.key()] = ours ? "event" : "record";
      if (ours) effective[it.key()] = it.value();
    }
    d.detail = json_internal::canonical_text(json{{"reason", "conflict"},
                                                  {"policy", conflict_policy_name(policy)},
                                                  {"base_version", base},
                                                  {"record_version", current.version},
                                                  {"resolution", resolution}});
  }
  d.effective_changes = json_internal::canonical_text(effective);
  // A resolved conflict where the record won every field leaves the record as it is; a
  // fast-forward or rebase is a new version even when its patch is empty.
  if (d.kind == MergeDecision::Kind::kResolved && effective.empty()) return d;
  const uint64_t version = current.version + 1;
  apply_patch(*state, *versions, effective, version);
  d.next.version = version;
  d.next.state = json_internal::canonical_text(*state);
  d.next.field_versions = json_internal::canonical_text(*versions);
  // The detail of a new version says all a merged message needs (messages.h).
  json detail = d.detail.empty() ? json{{"base_version", base}} : json::parse(d.detail);
  detail["version"] = version;
  detail["kind"] = merge_kind_name(d.kind);
  detail["changes"] = effective;
  d.detail = json_internal::canonical_text(detail);
  return d;
}

Result<RecordState> apply_effective(const RecordState& current, const std::string& effective,
                                    uint64_t version) {
  auto state = parse_stored(current.state, "state");
  if (!state.ok()) return state.error();
  auto versions = parse_stored(current.field_versions, "field_versions");
  if (!versions.ok()) return versions.error();
  auto patch = json_internal::parse_strict(effective);
  if (!patch.ok() || !patch->is_object()) {
    return make_error(Errc::kDataLoss, "the effective changes are not a JSON object");
  }
  apply_patch(*state, *versions, *patch, version);
  return RecordState{version, json_internal::canonical_text(*state),
                     json_internal::canonical_text(*versions)};
}

}  // namespace backbone::pipeline
