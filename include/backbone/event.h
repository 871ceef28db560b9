// Event: one immutable change to a business record (SPEC §2, table `events`).
//
// An Event can only be made through Event::create, which validates every field, or
// Event::restore, which re-validates a row read back from a store. Once made it never changes.
// `changes` is kept as RFC 8785 canonical JSON text, so that equal changes are equal bytes, and
// the fingerprint is computed once, when the event is made.
//
// EventDraft is the unvalidated input: what a source sent, before ids and timestamps are given.
//
// Thread-safety: Event is an immutable value; EventDraft is a plain struct.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backbone/clock.h"
#include "backbone/event_id.h"
#include "backbone/record_key.h"
#include "backbone/result.h"
#include "backbone/timestamp.h"

namespace backbone {

inline constexpr size_t kMaxChangesBytes = 256 * 1024;
inline constexpr size_t kMaxRecordIdBytes = 191;
inline constexpr size_t kMaxNameBytes = 64;  // record_type and source
inline constexpr size_t kMaxSnapshotRefBytes = 512;
inline constexpr uint64_t kMaxBaseVersion = 9'007'199'254'740'991;  // 2^53 - 1 (I-JSON)

struct EventDraft {
  std::optional<EventId> id;  // given by the store's generator when absent
  std::string record_type;
  std::string record_id;
  std::string source;
  std::optional<Timestamp> timestamp;  // the clock's now when absent
  uint64_t base_version = 0;
  std::string changes;  // JSON text of an object (RFC 7396 merge patch)
  std::optional<std::string> full_snapshot_ref;
};

class Event {
 public:
  // Validates `draft` (SPEC §2): record_type and source match [a-z][a-z0-9_.-]{0,63};
  // record_id is 1-191 bytes of printable UTF-8; changes is a JSON object of at most 256 KiB in
  // canonical form; base_version at most 2^53-1; full_snapshot_ref a gs://, s3://, file:// or
  // https:// URI of at most 512 bytes. An absent id comes from `ids`, an absent timestamp from
  // `clock`. Errors are kInvalidArgument or kTooLarge, with `where` naming the field.
  static Result<Event> create(const EventDraft& draft, EventIdGenerator& ids, const Clock& clock);

  // Rebuilds an event read from a store. Every field is validated again; a row that fails is
  // kDataLoss, since only valid events are ever written.
  static Result<Event> restore(const EventDraft& row);

  const EventId& id() const { return id_; }
  const std::string& record_type() const { return record_type_; }
  const std::string& record_id() const { return record_id_; }
  RecordKey record_key() const { return {record_type_, record_id_}; }
  const std::string& source() const { return source_; }
  Timestamp timestamp() const { return timestamp_; }
  uint64_t base_version() const { return base_version_; }
  const std::string& changes() const { return changes_; }  // canonical JSON text
  const std::optional<std::string>& full_snapshot_ref() const { return full_snapshot_ref_; }
  // SPEC §2: lowercase hex SHA-256 of the canonical JSON of
  // {record_type, record_id, source, base_version, changes}.
  const std::string& fingerprint() const { return fingerprint_; }

  bool operator==(const Event&) const = default;

 private:
  Event() = default;
  // Validates every field but id and timestamp, and sets them and the fingerprint.
  Result<void> fill_validated(const EventDraft& d);
  EventId id_;
  std::string record_type_;
  std::string record_id_;
  std::string source_;
  Timestamp timestamp_;
  uint64_t base_version_ = 0;
  std::string changes_;
  std::optional<std::string> full_snapshot_ref_;
  std::string fingerprint_;
};

// An event as stored, with its one mutable flag.
struct StoredEvent {
  Event event;
  bool processed = false;
};

// Validates a batch of drafts. All or nothing: the first invalid draft fails the batch, with
// `where` = "events[i].field".
Result<std::vector<Event>> create_events(std::span<const EventDraft> drafts, EventIdGenerator& ids,
                                         const Clock& clock);

// The fingerprint of SPEC §2, from its parts. REQUIRES: `canonical_changes` is canonical JSON.
std::string event_fingerprint(const std::string& record_type, const std::string& record_id,
                              const std::string& source, uint64_t base_version,
                              const std::string& canonical_changes);

// Field checks shared by every place that takes names from outside.
bool is_valid_name(std::string_view s);       // [a-z][a-z0-9_.-]{0,63}
bool is_valid_record_id(std::string_view s);  // 1-191 bytes of printable UTF-8

}  // namespace backbone
