// MergeRules: what merging one event into its record's state means (SPEC §5), as a pure
// function of the event, the record and the configuration, so that the merge stage, `rebuild`
// and the stress verifier's reference fold all decide alike.
//
//   base_version == version          fast-forward: apply the patch, version + 1
//   base_version <  version          rebase when no changed field moved since base_version;
//                                    else the record type's conflict policy:
//                                      reject            -> rejected (dead letter, not retriable)
//                                      last_writer_wins  -> per field, the newer event timestamp
//                                      source_priority   -> per field, the higher-ranked source
//   base_version >  version          gap: park until the versions between have merged
//
// An event an operator accepted (MergeSettings::accept, from `dlq resolve --accept`) applies on
// the current version whatever its base: accepted, unless it is a fast-forward anyway.
//
// A patch is an RFC 7396 merge patch; `field_versions` maps each top-level field to the version
// that last changed it.
//
// Thread-safety: pure functions.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backbone/event.h"
#include "backbone/result.h"

namespace backbone::pipeline {

enum class ConflictPolicy { kReject, kLastWriterWins, kSourcePriority };
const char* conflict_policy_name(ConflictPolicy p);
Result<ConflictPolicy> parse_conflict_policy(std::string_view name);

struct MergeSettings {
  ConflictPolicy default_policy = ConflictPolicy::kReject;
  std::map<std::string, ConflictPolicy> policies;  // by record type
  std::vector<std::string> source_priority;        // highest first
  bool accept = false;  // the event was accepted by an operator: it applies as it is
  ConflictPolicy policy_for(const std::string& record_type) const;
};

struct RecordState {
  uint64_t version = 0;               // 0: the record does not exist yet
  std::string state = "{}";           // canonical JSON object
  std::string field_versions = "{}";  // canonical JSON object: field -> version
};

// Who last changed a field: the event that made `version`.
struct FieldOrigin {
  Timestamp timestamp;
  std::string source;
};
// Looks up the origin of the given version of the record (for conflict policies).
using OriginLookup = std::function<Result<FieldOrigin>(uint64_t version)>;

struct MergeDecision {
  enum class Kind { kFastForward, kRebased, kResolved, kRejected, kGap, kAccepted };
  Kind kind = Kind::kFastForward;
  RecordState next;  // for kFastForward, kRebased, kResolved (unchanged if nothing won)
  std::string effective_changes;  // canonical JSON: the patch actually applied ("{}" if none)
  std::vector<std::string> conflicting_fields;
  std::string detail;  // canonical JSON for the audit entry
  // Whether the decision makes a new version (false for kRejected, kGap, and a kResolved where
  // the record won every field).
  bool new_version(uint64_t current_version) const { return next.version > current_version; }
};
const char* merge_kind_name(MergeDecision::Kind kind);

// Decides how `event` merges into `current`. Fails (kDataLoss) only when the stored record is
// not valid JSON, or an origin lookup fails.
Result<MergeDecision> decide_merge(const Event& event, const RecordState& current,
                                   const MergeSettings& settings, const OriginLookup& origin);

// Applies `effective` (the patch a merge applied, a JSON object) to `current`, making `version`:
// each field it names is set to `version` in field_versions. What decide_merge does for a new
// version, and what `rebuild` replays. Fails (kDataLoss) when a JSON text is not an object.
Result<RecordState> apply_effective(const RecordState& current, const std::string& effective,
                                    uint64_t version);

}  // namespace backbone::pipeline
