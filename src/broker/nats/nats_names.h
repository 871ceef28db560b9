// How the NATS backend names what it keeps in JetStream (doc/broker_nats.md). Every name
// starts with the URL's namespace `ns`; a topic or subscription name enters as its encoding
// enc(name): [A-Za-z0-9-] kept, every other byte as "_XX" (two upper-case hex digits), so
// that it is one subject token and a valid stream and key name ("orders.eu-1" becomes
// "orders_2Eeu-1").
//
//   topic T            stream  <ns>-t-<enc T>   subject <ns>.t.<enc T>
//   subscription S     stream  <ns>-s-<enc S>   subject <ns>.s.<enc S>   (its delivery journal)
//   catalog            bucket  <ns>-catalog     keys t.<enc T>, s.<enc S>, sc.<enc C>, sn.<enc N>
//   snapshot N         stream  <ns>-snapshots   subject <ns>.n.<its uid>  (its acknowledgement
//   state)
//
// A topic split into buckets (doc/scale_out.md) keeps one stream, with a subject per bucket:
// <ns>.t.<enc T>.<bucket>; its subscriptions' journals likewise, <ns>.s.<enc S>.<bucket>.
//
// Thread-safety: plain functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone::nats {

std::string encode_name(std::string_view name);
// The longest resource name the backend takes (stream names become file names).
inline constexpr size_t kMaxEncodedName = 200;
// kInvalidArgument when `name`'s encoding is longer than kMaxEncodedName.
Result<void> check_encodable(std::string_view name, const char* what);

std::string topic_stream(const std::string& ns, std::string_view topic);
std::string topic_subject(const std::string& ns, std::string_view topic);
std::string journal_stream(const std::string& ns, std::string_view subscription);
std::string journal_subject(const std::string& ns, std::string_view subscription);
// A split topic's or journal's subject for one bucket, and the wildcard for all of them.
std::string bucket_subject(const std::string& subject, uint32_t bucket);
std::string any_bucket(const std::string& subject);
// The bucket a split resource's subject names (its last token); nullopt when it names none.
std::optional<uint32_t> subject_bucket(std::string_view subject);
// Part `bucket`'s subject of a resource split into `buckets` (0: not split, `subject` itself).
std::string part_subject(const std::string& subject, uint32_t buckets, uint32_t bucket);
std::string catalog_bucket(const std::string& ns);
std::string topic_key(std::string_view topic);
std::string subscription_key(std::string_view subscription);
std::string schema_key(std::string_view schema);
std::string snapshot_key(std::string_view snapshot);
std::string snapshot_stream(const std::string& ns);
std::string snapshot_subject(const std::string& ns, std::string_view uid);

}  // namespace backbone::nats
