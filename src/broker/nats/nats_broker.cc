#include "broker/nats/nats_broker.h"

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "backbone/event_id.h"
#include "backbone/record_key.h"
#include "broker/delivery/config_json.h"
#include "broker/delivery/stored_message.h"
#include "broker/nats/nats_client.h"
#include "broker/nats/nats_message.h"
#include "broker/nats/nats_names.h"
#include "broker/nats/nats_seek.h"
#include "broker/nats/nats_subscription.h"
#include "broker/schema/schema_registry.h"

namespace backbone::nats {
namespace {

using nlohmann::json;

// Topic streams keep messages a day longer than the longest subscription retention (31 d).
constexpr int64_t kTopicMaxAgeMs = 32LL * 24 * 3600 * 1000;

std::string new_uid() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

// A catalog entry's JSON as `read` takes it; kDataLoss naming the key when it is malformed.
template <typename Read>
auto parse_catalog(const std::string& text, const std::string& key, Read read)
    -> Result<decltype(read(json()))> {
  try {
    return read(json::parse(text));
  } catch (const json::exception& ex) {
    return make_error(Errc::kDataLoss, "catalog entry " + key + " is damaged: " + ex.what());
  }
}

Result<SubscriptionEntry> parse_entry(const std::string& text, const std::string& key) {
  return parse_catalog(text, key, [](const json& j) {
    SubscriptionEntry e;
    e.config = delivery::subscription_config_from_json(j.at("config"));
    e.start = j.at("start").get<uint64_t>();
    e.uid = j.at("uid").get<std::string>();
    e.ready = j.value("ready", true);  // entries from before the claim were made ready
    e.claimed_at_ms = j.value("claimed_at_ms", int64_t{0});
    return e;
  });
}

// Reads a topic's catalog entry (topic_entry below).
Result<std::pair<TopicConfig, uint32_t>> parse_topic(const std::string& text,
                                                     const std::string& key) {
  return parse_catalog(text, key, [](const json& j) {
    return std::pair{delivery::topic_config_from_json(j), j.value("buckets", uint32_t{0})};
  });
}

Result<schema::SchemaRevisions> parse_revisions(const std::string& text, const std::string& key) {
  return parse_catalog(text, key,
                       [](const json& j) { return delivery::schema_revisions_from_json(j); });
}

std::string entry_text(const SubscriptionEntry& e) {
  json j = {{"config", delivery::subscription_config_to_json(e.config)},
            {"start", e.start},
            {"uid", e.uid}};
  if (!e.ready) {
    j["ready"] = false;
    j["claimed_at_ms"] = e.claimed_at_ms;
  }
  return j.dump();
}

// How long a creator may take between claiming a subscription's name and making it ready;
// after that its claim is taken to be a crashed creator's, and another creator takes it over.
constexpr int64_t kClaimTimeoutMs = 30'000;

// A topic's catalog entry: its config, and the buckets it is split into (0: none).
json topic_entry(const TopicConfig& config, uint32_t buckets) {
  json j = delivery::topic_config_to_json(config);
  if (buckets > 0) j["buckets"] = buckets;
  return j;
}

class NatsBroker final : public Broker {
 public:
  NatsBroker(std::unique_ptr<NatsClient> client, const Clock& clock, uint32_t buckets)
      : client_(std::move(client)),
        ns_(client_->url().ns),
        clock_(clock),
        buckets_(buckets),
        ids_(clock) {}

  Result<void> create_topic(const TopicConfig& config) override {
    BACKBONE_TRY(validate_topic_config(config));
    BACKBONE_TRY(check_encodable(config.name, "topic"));
    if (client_->kv_get(topic_key(config.name)).ok()) {
      return make_error(Errc::kAlreadyExists, "topic " + config.name + " exists");
    }
    if (config.schema) {
      BACKBONE_TRY(
          schema::SchemaGate::check_settings(*config.schema, revisions(config.schema->schema)));
    }
    const std::string subject = topic_subject(ns_, config.name);
    BACKBONE_TRY(client_->add_stream(
        {topic_stream(ns_, config.name), buckets_ > 0 ? any_bucket(subject) : subject,
         client_->url().replicas, kTopicMaxAgeMs, client_->url().dup_window_ms}));
    auto r = client_->kv_create(topic_key(config.name), topic_entry(config, buckets_).dump());
    if (r.code() == Errc::kAlreadyExists) {
      return make_error(Errc::kAlreadyExists, "topic " + config.name + " exists");
    }
    return r;
  }

  Result<TopicConfig> get_topic(std::string_view name) override {
    auto t = topic(name);
    if (!t.ok()) return t.error();
    return t->first;
  }

  Result<std::vector<TopicConfig>> list_topics() override {
    auto all = catalog_entries<std::pair<TopicConfig, uint32_t>>("t.", parse_topic);
    if (!all.ok()) return all.error();
    std::vector<TopicConfig> out;
    for (auto& [key, t] : *all) out.push_back(std::move(t.first.first));
    std::sort(out.begin(), out.end(),
              [](const TopicConfig& a, const TopicConfig& b) { return a.name < b.name; });
    return out;
  }

  Result<void> update_topic(const TopicConfig& config) override {
    BACKBONE_TRY(validate_topic_config(config));
    uint64_t revision = 0;
    auto t = topic(config.name, &revision);
    if (!t.ok()) return t.error();
    if (config.schema && config.schema != t->first.schema) {
      BACKBONE_TRY(
          schema::SchemaGate::check_settings(*config.schema, revisions(config.schema->schema)));
    }
    // The revision read: a concurrent change of the entry fails this one (kConflict).
    BACKBONE_TRY(client_->kv_update(topic_key(config.name), topic_entry(config, t->second).dump(),
                                    revision));
    std::lock_guard lk(mu_);
    topic_schemas_.erase(config.name);  // this process sees the change at once
    return {};
  }

  Result<void> delete_topic(std::string_view name) override {
    BACKBONE_TRY(get_topic(name));
    auto subs = entries();
    if (!subs.ok()) return subs.error();
    for (const auto& [key, e] : *subs) {
      if (e.first.config.dead_letter && e.first.config.dead_letter->topic == name) {
        return make_error(Errc::kConflict, "topic " + std::string(name) +
                                               " is the dead-letter topic of subscription " +
                                               e.first.config.name +
                                               "; change or delete that first");
      }
    }
    for (auto& [key, e] : *subs) {
      if (e.first.config.topic != name) continue;
      SubscriptionEntry detached = e.first;
      detached.config.topic = std::string(kDetachedTopic);
      BACKBONE_TRY(client_->kv_update(key, entry_text(detached), e.second));
      if (auto s = local(detached.config.name)) {
        s->set_config(detached.config);
        s->detach();
      }
    }
    BACKBONE_TRY(client_->kv_delete(topic_key(name)));
    // Its snapshots go with it: a topic made again under the name has other sequences.
    BACKBONE_TRY(drop_snapshots([&](const SnapshotEntry& s) { return s.config.topic == name; }));
    {
      std::lock_guard lk(mu_);
      topic_buckets_.erase(std::string(name));
      topic_schemas_.erase(std::string(name));
    }
    auto d = client_->delete_stream(topic_stream(ns_, name));
    if (!d.ok() && d.code() != Errc::kNotFound) return d;
    return {};
  }

  Result<void> create_subscription(const SubscriptionConfig& config) override {
    BACKBONE_TRY(validate_subscription_config(config));
    BACKBONE_TRY(check_encodable(config.name, "subscription"));
    if (auto held = client_->kv_get(subscription_key(config.name)); held.ok()) {
      auto other = parse_entry(held->first, subscription_key(config.name));
      if (!other.ok() || other->ready ||
          clock_.now().millis() - other->claimed_at_ms < kClaimTimeoutMs) {
        return make_error(Errc::kAlreadyExists, "subscription " + config.name + " exists");
      }
    }
    auto t = topic(config.topic);
    if (!t.ok()) return t.error();
    BACKBONE_TRY(check_dead_letter_topic(config));
    auto ts = client_->stream_state(topic_stream(ns_, config.topic));
    if (!ts.ok()) return ts.error();
    SubscriptionEntry e{config, ts->last_seq + 1, new_uid()};
    e.ready = false;
    e.claimed_at_ms = clock_.now().millis();
    // Claim the name first: of two processes creating the subscription at once, one claims it
    // and makes the journal, the other finds it claimed and leaves the journal alone. A claim
    // left by a creator that crashed is taken over after kClaimTimeoutMs.
    const std::string key = subscription_key(config.name);
    auto claimed = client_->kv_create(key, entry_text(e));
    if (claimed.code() == Errc::kAlreadyExists) {
      auto held = client_->kv_get(key);
      if (!held.ok()) return held.error();
      auto other = parse_entry(held->first, key);
      if (!other.ok()) return other.error();
      const bool abandoned =
          !other->ready && e.claimed_at_ms - other->claimed_at_ms >= kClaimTimeoutMs;
      if (!abandoned) {
        return make_error(Errc::kAlreadyExists, "subscription " + config.name + " exists");
      }
      claimed = client_->kv_update(key, entry_text(e), held->second);
      if (!claimed.ok()) {
        return make_error(Errc::kAlreadyExists, "subscription " + config.name + " exists");
      }
    }
    if (!claimed.ok()) return claimed;
    BACKBONE_TRY(NatsSubscription::create_journal(*client_, ns_, e, t->second));
    auto at = client_->kv_get(key);
    if (!at.ok()) return at.error();
    auto mine = parse_entry(at->first, key);
    if (!mine.ok()) return mine.error();
    if (mine->uid != e.uid) {
      return make_error(Errc::kUnavailable, "subscription " + config.name +
                                                " was taken over while it was being created");
    }
    e.ready = true;
    return client_->kv_update(key, entry_text(e), at->second);
  }

  Result<SubscriptionConfig> get_subscription(std::string_view name) override {
    auto e = entry(name);
    if (!e.ok()) return e.error();
    return e->first.config;
  }

  Result<std::vector<SubscriptionConfig>> list_subscriptions() override {
    auto subs = entries();
    if (!subs.ok()) return subs.error();
    std::vector<SubscriptionConfig> out;
    for (auto& [key, e] : *subs) out.push_back(std::move(e.first.config));
    return out;
  }

  Result<void> update_subscription(const SubscriptionConfig& config) override {
    auto e = entry(config.name);
    if (!e.ok()) return e.error();
    BACKBONE_TRY(validate_subscription_update(e->first.config, config));
    BACKBONE_TRY(check_dead_letter_topic(config));
    SubscriptionEntry next = e->first;
    next.config = config;
    BACKBONE_TRY(client_->kv_update(subscription_key(config.name), entry_text(next), e->second));
    if (auto s = local(config.name)) s->set_config(config);
    return {};
  }

  Result<void> delete_subscription(std::string_view name) override {
    BACKBONE_TRY(entry(name));
    BACKBONE_TRY(client_->kv_delete(subscription_key(name)));
    {
      std::lock_guard lk(mu_);
      subs_.erase(std::string(name));
    }
    auto d = client_->delete_stream(journal_stream(ns_, name));
    if (!d.ok() && d.code() != Errc::kNotFound) return d;
    return {};
  }

  // Snapshots: the config in the catalog ("sn.<name>"), each part's acknowledgement state in
  // the snapshots stream under the snapshot's uid. A seek resets each part's journal
  // (nats_seek.h, doc/broker_nats.md).
  Result<SnapshotConfig> create_snapshot(std::string_view name, std::string_view subscription,
                                         const Attributes& labels) override {
    BACKBONE_TRY(validate_resource_name(name, "snapshot"));
    BACKBONE_TRY(check_encodable(name, "snapshot"));
    const Timestamp now = clock_.now();
    if (auto held = snapshot(name); held.ok()) {
      return make_error(Errc::kAlreadyExists, "snapshot " + std::string(name) + " exists");
    } else if (held.code() != Errc::kNotFound) {
      return held.error();
    }
    auto e = entry(subscription);
    if (!e.ok()) return e.error();
    const SubscriptionEntry& sub = e->first;
    if (sub.config.detached || sub.config.topic == kDetachedTopic) {
      return make_error(Errc::kImmutable, "subscription " + std::string(subscription) +
                                              " has no topic: there is nothing to snapshot");
    }
    auto buckets = topic_buckets(sub.config.topic);
    if (!buckets.ok()) return buckets.error();
    auto state = read_parts(*client_, ns_, sub, *buckets);
    if (!state.ok()) return state.error();
    auto expire = snapshot_expiry(state->oldest_unacked, now);
    if (!expire.ok()) return expire.error();
    SnapshotEntry made{{std::string(name), sub.config.topic, *expire, labels}, new_uid(), *buckets};
    BACKBONE_TRY(save_parts(*client_, ns_, made.uid, state->parts));
    BACKBONE_TRY(drop_snapshots([&](const SnapshotEntry& s) {
      return !(now < s.config.expire_time);  // every expired one goes now
    }));
    auto r = client_->kv_create(snapshot_key(name), snapshot_text(made));
    if (!r.ok()) {
      (void)drop_parts(*client_, ns_, made.uid);
      if (r.code() == Errc::kAlreadyExists) {
        return make_error(Errc::kAlreadyExists, "snapshot " + std::string(name) + " exists");
      }
      return r.error();
    }
    return made.config;
  }

  Result<SnapshotConfig> get_snapshot(std::string_view name) override {
    auto s = snapshot(name);
    if (!s.ok()) return s.error();
    return s->first.config;
  }

  Result<std::vector<SnapshotConfig>> list_snapshots() override {
    auto all = snapshots();
    if (!all.ok()) return all.error();
    const Timestamp now = clock_.now();
    std::vector<SnapshotConfig> out;
    for (const auto& [key, s] : *all) {
      if (now < s.first.config.expire_time) out.push_back(s.first.config);
    }
    std::sort(out.begin(), out.end(),
              [](const SnapshotConfig& a, const SnapshotConfig& b) { return a.name < b.name; });
    return out;
  }

  Result<void> update_snapshot(const SnapshotConfig& config) override {
    auto s = snapshot(config.name);
    if (!s.ok()) return s.error();
    BACKBONE_TRY(validate_snapshot_update(s->first.config, config));
    SnapshotEntry next = s->first;
    next.config = config;
    return client_->kv_update(snapshot_key(config.name), snapshot_text(next), s->second);
  }

  Result<void> delete_snapshot(std::string_view name) override {
    auto s = snapshot(name);
    if (!s.ok()) return s.error();
    BACKBONE_TRY(client_->kv_delete(snapshot_key(name)));
    return drop_parts(*client_, ns_, s->first.uid);
  }

  Result<void> seek_to_time(std::string_view subscription, Timestamp time) override {
    auto e = seekable(subscription);
    if (!e.ok()) return e.error();
    const SubscriptionEntry& sub = *e;
    if (sub.config.topic == kDetachedTopic) return {};  // its topic was deleted: nothing to seek
    auto buckets = topic_buckets(sub.config.topic);
    if (!buckets.ok()) return buckets.error();
    const std::string stream = topic_stream(ns_, sub.config.topic);
    auto ts = client_->stream_state(stream);
    if (!ts.ok()) return ts.error();
    // The subscription sees what was published since it was made; of that, what is held.
    if (ts->first_seq > sub.start && ts->messages > 0) {
      auto held_from = published_at(*client_, stream, ts->first_seq);
      if (!held_from.ok() && held_from.code() != Errc::kNotFound) return held_from.error();
      if (held_from.ok() && time < *held_from) {
        return beyond_retention_error(subscription, time, *held_from);
      }
    }
    const uint64_t from = std::max(sub.start, ts->first_seq);
    auto lwm =
        first_published_at_or_after(*client_, stream, from, std::max(from, ts->last_seq + 1), time);
    if (!lwm.ok()) return lwm.error();
    std::vector<delivery::RestoredState> parts(std::max<uint32_t>(*buckets, 1));
    for (auto& p : parts) p.lwm = *lwm;
    return reset(sub, *buckets, parts);
  }

  Result<void> seek_to_snapshot(std::string_view subscription,
                                std::string_view snapshot_name) override {
    auto e = seekable(subscription);
    if (!e.ok()) return e.error();
    const SubscriptionEntry& sub = *e;
    auto s = snapshot(snapshot_name);
    if (!s.ok()) return s.error();
    const SnapshotEntry& snap = s->first;
    auto buckets = sub.config.topic == kDetachedTopic
                       ? Result<uint32_t>(make_error(Errc::kNotFound, "no topic"))
                       : topic_buckets(sub.config.topic);
    if (sub.config.topic != snap.config.topic || !buckets.ok() || *buckets != snap.buckets) {
      return make_error(Errc::kInvalidArgument,
                        "snapshot " + std::string(snapshot_name) + " was made on topic " +
                            snap.config.topic + ", not on subscription " +
                            std::string(subscription) + "'s topic",
                        "snapshot");
    }
    auto parts = load_parts(*client_, ns_, snap.uid, std::max<uint32_t>(snap.buckets, 1));
    if (!parts.ok()) return parts.error();
    return reset(sub, snap.buckets, *parts);
  }

  Result<void> detach_subscription(std::string_view name) override {
    auto e = entry(name);
    if (!e.ok()) return e.error();
    if (e->first.config.detached) return {};
    SubscriptionEntry next = e->first;
    next.config.detached = true;
    BACKBONE_TRY(client_->kv_update(subscription_key(name), entry_text(next), e->second));
    if (auto s = local(std::string(name))) {
      s->set_config(next.config);
      s->detach();
    }
    return {};
  }

  // Schemas: one catalog entry each ("sc.<name>"), its revisions newest first; a change is
  // written at the revision read, so that of two processes changing one schema one fails.
  Result<SchemaConfig> create_schema(const SchemaConfig& config) override {
    BACKBONE_TRY(check_encodable(config.name, "schema"));
    if (client_->kv_get(schema_key(config.name)).ok()) {
      return make_error(Errc::kAlreadyExists, "schema " + config.name + " exists");
    }
    auto revision = schema::make_revision(config, {}, clock_.now());
    if (!revision.ok()) return revision.error();
    auto r = client_->kv_create(schema_key(config.name),
                                delivery::schema_revisions_to_json({*revision}).dump());
    if (r.code() == Errc::kAlreadyExists) {
      return make_error(Errc::kAlreadyExists, "schema " + config.name + " exists");
    }
    if (!r.ok()) return r.error();
    return *revision;
  }

  Result<SchemaConfig> commit_schema(const SchemaConfig& config) override {
    uint64_t at = 0;
    auto held = revisions(config.name, &at);
    if (!held.ok()) return held.error();
    auto revision = schema::make_revision(config, *held, clock_.now());
    if (!revision.ok()) return revision.error();
    held->insert(held->begin(), *revision);
    BACKBONE_TRY(client_->kv_update(schema_key(config.name),
                                    delivery::schema_revisions_to_json(*held).dump(), at));
    return *revision;
  }

  Result<SchemaConfig> get_schema(std::string_view name, std::string_view revision) override {
    auto held = revisions(name);
    if (!held.ok()) return held.error();
    return schema::find_revision(*held, revision);
  }

  Result<std::vector<SchemaConfig>> list_schemas() override {
    auto all = catalog_entries<schema::SchemaRevisions>("sc.", parse_revisions);
    if (!all.ok()) return all.error();
    std::vector<SchemaConfig> out;
    for (auto& [key, held] : *all) out.push_back(std::move(held.first.front()));
    std::sort(out.begin(), out.end(),
              [](const SchemaConfig& a, const SchemaConfig& b) { return a.name < b.name; });
    return out;
  }

  Result<std::vector<SchemaConfig>> list_schema_revisions(std::string_view name) override {
    return revisions(name);
  }

  Result<void> delete_schema(std::string_view name) override {
    BACKBONE_TRY(revisions(name));
    return client_->kv_delete(schema_key(name));
  }

  Result<void> delete_schema_revision(std::string_view name, std::string_view revision) override {
    uint64_t at = 0;
    auto held = revisions(name, &at);
    if (!held.ok()) return held.error();
    BACKBONE_TRY(schema::drop_revision(*held, revision));
    return client_->kv_update(schema_key(name), delivery::schema_revisions_to_json(*held).dump(),
                              at);
  }

  Result<std::vector<std::string>> publish(std::string_view topic,
                                           std::span<const OutgoingMessage> messages) override {
    BACKBONE_TRY(validate_messages(messages));
    auto split = topic_buckets(topic);
    if (!split.ok()) return split.error();
    auto settings = topic_schema(topic);
    if (!settings.ok()) return settings.error();
    std::vector<OutgoingMessage> admitted;
    if (*settings) {
      auto checked = schema_gate_.admit(**settings, revisions((*settings)->schema), messages);
      if (!checked.ok()) return checked.error();
      admitted = std::move(*checked);
      messages = admitted;
    }
    const std::string subject = topic_subject(ns_, topic);
    const int64_t now = clock_.now().micros();
    const int64_t max_payload = client_->max_payload();
    std::vector<OutgoingNatsMessage> out;
    std::vector<std::string> ids;
    out.reserve(messages.size());
    ids.reserve(messages.size());
    for (const OutgoingMessage& m : messages) {
      OutgoingNatsMessage o;
      o.msg_id = ids_.next().str();
      o.subject = route(subject, *split, m.ordering_key, o.msg_id);
      encode_nats_message(o.msg_id, {0, now, m.ordering_key, m.attributes, m.data}, o.payload);
      if (static_cast<int64_t>(o.payload.size()) > max_payload) {
        // Refused before anything is sent: the server would refuse it on every retry.
        return make_error(
            Errc::kInvalidArgument,
            "message " + std::to_string(out.size()) + " takes " + std::to_string(o.payload.size()) +
                " bytes, over the NATS server's max_payload of " + std::to_string(max_payload) +
                " (raise max_payload in nats-server's configuration, up to 64 MB, "
                "to carry messages of up to 10 MB; doc/broker_nats.md)",
            "data");
      }
      ids.push_back(o.msg_id);
      out.push_back(std::move(o));
    }
    auto r = client_->publish(out);
    if (!r.ok()) {
      if (get_topic(topic).code() == Errc::kNotFound) {
        return make_error(Errc::kNotFound, "topic " + std::string(topic) + " does not exist");
      }
      return r.error();
    }
    return ids;
  }

  Result<std::vector<ReceivedMessage>> pull(std::string_view subscription, size_t max,
                                            int64_t wait_us) override {
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    if ((*s)->config().detached) return detached_error(subscription);
    return (*s)->pull(max, wait_us);
  }

  Result<size_t> ack(std::string_view subscription, std::span<const std::string> ack_ids) override {
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    return (*s)->ack(ack_ids);
  }

  Result<void> nack(std::string_view subscription, std::span<const std::string> ack_ids,
                    std::optional<int64_t> delay_us, std::string_view reason) override {
    if (delay_us) BACKBONE_TRY(validate_delay(*delay_us, "delay"));
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    return (*s)->nack(ack_ids, delay_us, reason.empty() ? "nacked" : std::string(reason));
  }

  Result<void> modify_ack_deadline(std::string_view subscription,
                                   std::span<const std::string> ack_ids,
                                   int64_t deadline_us) override {
    BACKBONE_TRY(validate_delay(deadline_us, "ack_deadline"));
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    return (*s)->modify_ack_deadline(ack_ids, deadline_us);
  }

  Result<void> dead_letter(std::string_view subscription, const std::string& ack_id,
                           std::string_view reason) override {
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    if (!(*s)->config().dead_letter) {
      return make_error(Errc::kInvalidArgument,
                        "subscription " + std::string(subscription) + " has no dead-letter policy",
                        "dead_letter_policy");
    }
    return (*s)->dead_letter(ack_id, std::string(reason));
  }

  // One process serves a subscription, or each bucket of a split one, at a time
  // (doc/broker_nats.md).
  bool shares_subscriptions() const override { return false; }

  Result<uint32_t> buckets(std::string_view subscription) override {
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    return (*s)->buckets();
  }

  Result<void> serve_buckets(std::string_view subscription,
                             const std::map<uint32_t, uint64_t>& buckets) override {
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    if ((*s)->buckets() == 0) return Broker::serve_buckets(subscription, buckets);
    for (const auto& [b, epoch] : buckets) {
      if (b >= (*s)->buckets()) {
        return make_error(Errc::kInvalidArgument,
                          "subscription " + std::string(subscription) + " has " +
                              std::to_string((*s)->buckets()) + " buckets, not bucket " +
                              std::to_string(b),
                          "buckets");
      }
    }
    (*s)->serve(buckets);
    return {};
  }

  Result<SubscriptionStats> stats(std::string_view subscription) override {
    auto s = served(subscription);
    if (!s.ok()) return s.error();
    return (*s)->stats();
  }

 private:
  // A message's subject on a topic whose subject is `subject`: its bucket's when the topic is
  // split, by ordering key, or by message id when it has none.
  static std::string route(const std::string& subject, uint32_t buckets,
                           const std::string& ordering_key, const std::string& message_id) {
    if (buckets == 0) return subject;
    return bucket_subject(subject,
                          bucket_of(ordering_key.empty() ? message_id : ordering_key, buckets));
  }

  // A topic's config and bucket count, from the catalog.
  Result<std::pair<TopicConfig, uint32_t>> topic(std::string_view name,
                                                 uint64_t* revision = nullptr) {
    auto v = client_->kv_get(topic_key(name));
    if (v.code() == Errc::kNotFound) {
      return make_error(Errc::kNotFound, "topic " + std::string(name) + " does not exist");
    }
    if (!v.ok()) return v.error();
    if (revision) *revision = v->second;
    return parse_topic(v->first, topic_key(name));
  }

  // A schema's revisions from the catalog, with the entry's revision.
  Result<schema::SchemaRevisions> revisions(std::string_view name, uint64_t* at = nullptr) {
    BACKBONE_TRY(check_encodable(name, "schema"));
    return revisions_at(schema_key(name), std::string(name), at);
  }
  Result<schema::SchemaRevisions> revisions_at(const std::string& key, const std::string& name,
                                               uint64_t* at = nullptr) {
    auto v = client_->kv_get(key);
    if (v.code() == Errc::kNotFound) return schema::no_schema(name);
    if (!v.ok()) return v.error();
    if (at) *at = v->second;
    return parse_revisions(v->first, key);
  }

  // A topic's schema settings, read again from the catalog when the copy held here is a second
  // old by the clock: a change made through any process holds here within a second.
  Result<std::optional<TopicSchemaSettings>> topic_schema(std::string_view name) {
    const Timestamp now = clock_.now();
    {
      std::lock_guard lk(mu_);
      auto it = topic_schemas_.find(std::string(name));
      if (it != topic_schemas_.end() && now.micros() - it->second.first.micros() < kSecond) {
        return it->second.second;
      }
    }
    auto t = topic(name);
    if (!t.ok()) return t.error();
    std::lock_guard lk(mu_);
    topic_schemas_[std::string(name)] = {now, t->first.schema};
    return t->first.schema;
  }

  // A topic's bucket count, which never changes: read once.
  Result<uint32_t> topic_buckets(std::string_view name) {
    {
      std::lock_guard lk(mu_);
      if (auto it = topic_buckets_.find(std::string(name)); it != topic_buckets_.end()) {
        return it->second;
      }
    }
    auto t = topic(name);
    if (!t.ok()) return t.error();
    std::lock_guard lk(mu_);
    topic_buckets_[std::string(name)] = t->second;
    return t->second;
  }

  // The catalog entry of a subscription, with its revision. One that another process is
  // creating is waited for (its journal takes milliseconds), up to 10 s of real time.
  Result<std::pair<SubscriptionEntry, uint64_t>> entry(std::string_view name) {
    const std::string key = subscription_key(name);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      auto v = client_->kv_get(key);
      if (v.code() == Errc::kNotFound) {
        return make_error(Errc::kNotFound, "subscription " + std::string(name) + " does not exist");
      }
      if (!v.ok()) return v.error();
      auto e = parse_entry(v->first, key);
      if (!e.ok()) return e.error();
      if (e->ready) return std::pair{std::move(*e), v->second};
      if (std::chrono::steady_clock::now() > deadline) {
        return make_error(Errc::kUnavailable,
                          "subscription " + std::string(name) + " is still being created");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Every catalog entry whose key starts with `prefix`, read by `parse`, by key, with its
  // revision (one deleted meanwhile is left out).
  template <typename T>
  Result<std::map<std::string, std::pair<T, uint64_t>>> catalog_entries(
      std::string_view prefix,
      Result<T> (*parse)(const std::string& text, const std::string& key)) {
    auto keys = client_->kv_keys();
    if (!keys.ok()) return keys.error();
    std::map<std::string, std::pair<T, uint64_t>> out;
    for (const std::string& k : *keys) {
      if (!k.starts_with(prefix)) continue;
      auto v = client_->kv_get(k);
      if (v.code() == Errc::kNotFound) continue;
      if (!v.ok()) return v.error();
      auto e = parse(v->first, k);
      if (!e.ok()) return e.error();
      out.emplace(k, std::pair{std::move(*e), v->second});
    }
    return out;
  }
  // Every subscription's catalog entry, by key.
  Result<std::map<std::string, std::pair<SubscriptionEntry, uint64_t>>> entries() {
    return catalog_entries<SubscriptionEntry>("s.", parse_entry);
  }

  // A snapshot's catalog entry: its config, where its parts are kept, and its topic's buckets.
  struct SnapshotEntry {
    SnapshotConfig config;
    std::string uid;
    uint32_t buckets = 0;
  };
  static std::string snapshot_text(const SnapshotEntry& s) {
    json j = delivery::snapshot_config_to_json(s.config);
    j["uid"] = s.uid;
    j["buckets"] = s.buckets;
    return j.dump();
  }
  static Result<SnapshotEntry> parse_snapshot(const std::string& text, const std::string& key) {
    return parse_catalog(text, key, [](const json& j) {
      return SnapshotEntry{delivery::snapshot_config_from_json(j), j.at("uid").get<std::string>(),
                           j.at("buckets").get<uint32_t>()};
    });
  }
  // Every snapshot's catalog entry (expired ones too), by key, with its revision.
  Result<std::map<std::string, std::pair<SnapshotEntry, uint64_t>>> snapshots() {
    return catalog_entries<SnapshotEntry>("sn.", parse_snapshot);
  }
  // An unexpired snapshot, with its entry's revision (kNotFound: none, or expired).
  Result<std::pair<SnapshotEntry, uint64_t>> snapshot(std::string_view name) {
    BACKBONE_TRY(check_encodable(name, "snapshot"));
    const std::string key = snapshot_key(name);
    auto v = client_->kv_get(key);
    if (!v.ok() && v.code() != Errc::kNotFound) return v.error();
    if (v.ok()) {
      auto s = parse_snapshot(v->first, key);
      if (!s.ok()) return s.error();
      if (clock_.now() < s->config.expire_time) return std::pair{std::move(*s), v->second};
    }
    return make_error(Errc::kNotFound, "snapshot " + std::string(name) + " does not exist");
  }
  // Deletes the snapshots that `doomed` names, entry first, then their parts.
  template <typename Pred>
  Result<void> drop_snapshots(Pred doomed) {
    auto all = snapshots();
    if (!all.ok()) return all.error();
    for (const auto& [key, s] : *all) {
      if (!doomed(s.first)) continue;
      auto d = client_->kv_delete(key);
      if (!d.ok() && d.code() != Errc::kNotFound) return d;
      BACKBONE_TRY(drop_parts(*client_, ns_, s.first.uid));
    }
    return {};
  }
  // The subscription a seek names: it exists and is not detached.
  Result<SubscriptionEntry> seekable(std::string_view subscription) {
    auto e = entry(subscription);
    if (!e.ok()) return e.error();
    if (e->first.config.detached) return detached_error(subscription);
    return std::move(e->first);
  }
  // Puts `parts` on the subscription's journals; the process serving it reloads from them (this
  // one at once).
  Result<void> reset(const SubscriptionEntry& sub, uint32_t buckets,
                     const std::vector<delivery::RestoredState>& parts) {
    BACKBONE_TRY(reset_parts(*client_, ns_, sub.config.name, buckets, parts));
    if (auto s = local(sub.config.name)) s->reload();
    return {};
  }

  std::shared_ptr<NatsSubscription> local(const std::string& name) {
    std::lock_guard lk(mu_);
    auto it = subs_.find(name);
    return it == subs_.end() ? nullptr : it->second;
  }

  // This process' server of a subscription, made on first use from the catalog.
  Result<std::shared_ptr<NatsSubscription>> served(std::string_view name) {
    if (auto s = local(std::string(name))) return s;
    auto e = entry(name);
    if (!e.ok()) return e.error();
    const bool detached = e->first.config.topic == kDetachedTopic || e->first.config.detached;
    uint32_t buckets = 0;
    if (!detached) {
      auto t = topic_buckets(e->first.config.topic);
      if (!t.ok()) return t.error();
      buckets = *t;
    }
    auto router = [this](const std::string& topic, const std::string& key,
                         const std::string& id) -> Result<std::string> {
      auto b = topic_buckets(topic);
      if (!b.ok()) return b.error();
      return route(topic_subject(ns_, topic), *b, key, id);
    };
    auto s = std::make_shared<NatsSubscription>(*client_, ns_, std::move(e->first), buckets, router,
                                                clock_);
    if (detached) s->detach();
    std::lock_guard lk(mu_);
    auto [it, inserted] = subs_.emplace(std::string(name), s);
    return it->second;
  }

  Result<void> check_dead_letter_topic(const SubscriptionConfig& c) {
    if (!c.dead_letter) return {};
    if (get_topic(c.dead_letter->topic).code() == Errc::kNotFound) {
      return make_error(Errc::kNotFound,
                        "dead-letter topic " + c.dead_letter->topic + " does not exist",
                        "dead_letter_policy.topic");
    }
    return {};
  }

  std::unique_ptr<NatsClient> client_;
  const std::string ns_;
  const Clock& clock_;
  const uint32_t buckets_;  // of the topics this broker creates
  EventIdGenerator ids_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<NatsSubscription>> subs_;  // GUARDED_BY(mu_)
  std::map<std::string, uint32_t> topic_buckets_;                  // GUARDED_BY(mu_)
  // Each topic's schema settings, and when they were read.
  std::map<std::string, std::pair<Timestamp, std::optional<TopicSchemaSettings>>>
      topic_schemas_;  // GUARDED_BY(mu_)
  schema::SchemaGate schema_gate_;
};

}  // namespace

Result<std::unique_ptr<Broker>> open_nats_broker(const NatsUrl& url, const Clock* clock,
                                                 uint32_t buckets) {
  auto client = NatsClient::connect(url);
  if (!client.ok()) return client.error();
  BACKBONE_TRY((*client)->open_bucket(catalog_bucket(url.ns), url.replicas));
  return std::unique_ptr<Broker>(
      new NatsBroker(std::move(*client), clock ? *clock : SystemClock::instance(), buckets));
}

}  // namespace backbone::nats
