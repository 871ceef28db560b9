#include "broker/embedded/embedded_broker.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "broker/delivery/ack_id.h"
#include "broker/delivery/journal_sink.h"
#include "broker/delivery/subscription_state.h"
#include "broker/embedded/catalog.h"
#include "broker/embedded/segment_log.h"
#include "broker/embedded/state_journal.h"
#include "broker/schema/schema_registry.h"

namespace backbone::embedded {

using delivery::Delivery;
using delivery::RestoredState;
using delivery::SubscriptionState;
using delivery::TopicIndex;

namespace {

struct Topic {
  uint32_t id = 0;
  TopicConfig config;
  std::unique_ptr<SegmentLog> log;
  TopicIndex index;
  std::vector<std::pair<uint64_t, MsgRef>> unapplied;  // appended, not yet durable
  // The newest publish time among the messages compaction dropped (INT64_MIN: none), which
  // bounds how far back a seek can go. After a restart it is taken to be the oldest held's.
  int64_t dropped_until_us = INT64_MIN;
};

struct Sub {
  uint32_t id = 0;
  uint64_t start_offset = 0;
  Topic* topic = nullptr;  // nullptr once its topic is deleted
  SubscriptionState state;
  Sub(uint32_t id_, uint64_t start, Topic* t, SubscriptionConfig config, uint64_t gen)
      : id(id_), start_offset(start), topic(t), state(std::move(config), start, gen) {}
};

// A message appended and not yet durable: its topic's id, offset and place on disk.
using Unapplied = std::tuple<uint32_t, uint64_t, MsgRef>;

// How often the flusher writes a failed batch again when no caller asks sooner.
constexpr auto kRetryInterval = std::chrono::seconds(1);

std::string message_id(uint32_t topic_id, uint64_t offset) {
  return std::to_string(topic_id) + "." + std::to_string(offset);
}

class EmbeddedBroker final : public Broker {
 public:
  EmbeddedBroker(EmbeddedOptions options, int lock_fd)
      : options_(std::move(options)),
        clock_(options_.clock ? *options_.clock : SystemClock::instance()),
        lock_fd_(lock_fd) {}

  ~EmbeddedBroker() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    flush_cv_.notify_all();
    durable_cv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  Result<void> recover();
  void start() {
    flusher_ = std::thread([this] { flush_loop(); });
  }

  Result<void> create_topic(const TopicConfig& config) override {
    BACKBONE_TRY(validate_topic_config(config));
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    if (topics_.count(config.name)) {
      return make_error(Errc::kAlreadyExists, "topic " + config.name + " exists");
    }
    if (config.schema) {
      BACKBONE_TRY(schema::SchemaGate::check_settings(*config.schema,
                                                      revisions_locked(config.schema->schema)));
    }
    const uint32_t id = catalog_.next_id;
    auto topic = std::make_unique<Topic>();
    topic->id = id;
    topic->config = config;
    auto log =
        SegmentLog::open(topic_dir(id), options_.segment_bytes, [](uint64_t, const MsgRef&) {});
    if (!log.ok()) return log.error();
    topic->log = std::move(*log);
    topic->index = TopicIndex(topic->log->next_offset());
    Catalog next = catalog_;
    next.next_id = id + 1;
    next.topics.push_back({id, config});
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    topics_by_id_[id] = topic.get();
    topics_.emplace(config.name, std::move(topic));
    return {};
  }

  Result<TopicConfig> get_topic(std::string_view name) override {
    std::lock_guard lk(mu_);
    auto t = find_topic(name);
    if (!t.ok()) return t.error();
    return (*t)->config;
  }

  Result<std::vector<TopicConfig>> list_topics() override {
    std::lock_guard lk(mu_);
    std::vector<TopicConfig> out;
    for (const auto& [name, t] : topics_) out.push_back(t->config);
    return out;
  }

  Result<void> update_topic(const TopicConfig& config) override {
    BACKBONE_TRY(validate_topic_config(config));
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto t = find_topic(config.name);
    if (!t.ok()) return t.error();
    if (config.schema && config.schema != (*t)->config.schema) {
      BACKBONE_TRY(schema::SchemaGate::check_settings(*config.schema,
                                                      revisions_locked(config.schema->schema)));
    }
    Catalog next = catalog_;
    for (auto& ct : next.topics) {
      if (ct.id == (*t)->id) ct.config = config;
    }
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    (*t)->config = config;
    return {};
  }

  Result<void> delete_topic(std::string_view name) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto t = find_topic(name);
    if (!t.ok()) return t.error();
    for (const auto& [sname, s] : subs_) {
      const auto& dl = s->state.config().dead_letter;
      if (dl && dl->topic == name) {
        return make_error(Errc::kConflict, "topic " + std::string(name) +
                                               " is the dead-letter topic of subscription " +
                                               sname + "; change or delete that first");
      }
    }
    Topic* topic = *t;
    Catalog next = catalog_;
    std::erase_if(next.topics, [&](const CatalogTopic& ct) { return ct.id == topic->id; });
    std::erase_if(next.snapshots,
                  [&](const CatalogSnapshot& s) { return s.topic_id == topic->id; });
    for (auto& cs : next.subscriptions) {
      if (cs.topic_id == topic->id) {
        cs.topic_id = 0;
        cs.config.topic = std::string(kDetachedTopic);
      }
    }
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    for (auto& [sname, s] : subs_) {
      if (s->topic == topic) {
        s->topic = nullptr;
        SubscriptionConfig c = s->state.config();
        c.topic = std::string(kDetachedTopic);
        s->state.set_config(std::move(c));
        s->state.detach(0);
      }
    }
    topic->log->remove_all();
    topics_by_id_.erase(topic->id);
    topics_.erase(topics_.find(name));
    return {};
  }

  Result<void> create_subscription(const SubscriptionConfig& config) override {
    BACKBONE_TRY(validate_subscription_config(config));
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    if (subs_.count(config.name)) {
      return make_error(Errc::kAlreadyExists, "subscription " + config.name + " exists");
    }
    auto t = find_topic(config.topic);
    if (!t.ok()) return t.error();
    BACKBONE_TRY(check_dead_letter_topic(config));
    Topic* topic = *t;
    const uint32_t id = catalog_.next_id;
    const uint64_t start = topic->log->next_offset();
    Catalog next = catalog_;
    next.next_id = id + 1;
    next.subscriptions.push_back({id, topic->id, start, config});
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    auto sub = std::make_unique<Sub>(id, start, topic, config, next_generation_seed());
    subs_by_id_[id] = sub.get();
    subs_.emplace(config.name, std::move(sub));
    return {};
  }

  Result<SubscriptionConfig> get_subscription(std::string_view name) override {
    std::lock_guard lk(mu_);
    auto s = find_sub(name);
    if (!s.ok()) return s.error();
    return (*s)->state.config();
  }

  Result<std::vector<SubscriptionConfig>> list_subscriptions() override {
    std::lock_guard lk(mu_);
    std::vector<SubscriptionConfig> out;
    for (const auto& [name, s] : subs_) out.push_back(s->state.config());
    return out;
  }

  Result<void> update_subscription(const SubscriptionConfig& config) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto s = find_sub(config.name);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    BACKBONE_TRY(validate_subscription_update(sub->state.config(), config));
    BACKBONE_TRY(check_dead_letter_topic(config));
    Catalog next = catalog_;
    for (auto& cs : next.subscriptions) {
      if (cs.id == sub->id) cs.config = config;
    }
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    sub->state.set_config(config);
    return {};
  }

  Result<void> delete_subscription(std::string_view name) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto s = find_sub(name);
    if (!s.ok()) return s.error();
    const uint32_t id = (*s)->id;
    Catalog next = catalog_;
    std::erase_if(next.subscriptions, [&](const CatalogSubscription& cs) { return cs.id == id; });
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    subs_by_id_.erase(id);
    subs_.erase(subs_.find(name));
    return {};
  }

  Result<SnapshotConfig> create_snapshot(std::string_view name, std::string_view subscription,
                                         const Attributes& labels) override {
    BACKBONE_TRY(validate_resource_name(name, "snapshot"));
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    const Timestamp now = clock_.now();
    if (find_snapshot(name, now)) {
      return make_error(Errc::kAlreadyExists, "snapshot " + std::string(name) + " exists");
    }
    auto s = find_sub(subscription);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    if (!sub->topic || sub->state.config().detached) {
      return make_error(Errc::kImmutable, "subscription " + std::string(subscription) +
                                              " has no topic: there is nothing to snapshot");
    }
    const TopicIndex& index = sub->topic->index;
    const uint64_t lwm = sub->state.low_water_mark();
    std::optional<Timestamp> oldest;
    if (lwm < index.end()) oldest = Timestamp::from_micros(index.at(lwm).publish_time_us);
    auto expire = snapshot_expiry(oldest, now);
    if (!expire.ok()) return expire.error();
    CatalogSnapshot snap;
    snap.config = {std::string(name), sub->topic->config.name, *expire, labels};
    snap.topic_id = sub->topic->id;
    snap.lwm = lwm;
    snap.acked = sub->state.acked_above_lwm();
    BACKBONE_TRY(change_catalog([&](Catalog& next) {
      // An expired one of the same name, and every other expired one, goes now.
      std::erase_if(next.snapshots, [&](const CatalogSnapshot& c) {
        return c.config.name == name || !(now < c.config.expire_time);
      });
      next.snapshots.push_back(snap);
    }));
    return snap.config;
  }

  Result<SnapshotConfig> get_snapshot(std::string_view name) override {
    std::lock_guard lk(mu_);
    const CatalogSnapshot* s = find_snapshot(name, clock_.now());
    if (!s) return no_snapshot(name);
    return s->config;
  }

  Result<std::vector<SnapshotConfig>> list_snapshots() override {
    std::lock_guard lk(mu_);
    std::vector<SnapshotConfig> out;
    const Timestamp now = clock_.now();
    for (const auto& s : catalog_.snapshots) {
      if (now < s.config.expire_time) out.push_back(s.config);
    }
    return out;
  }

  Result<void> update_snapshot(const SnapshotConfig& config) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    const CatalogSnapshot* s = find_snapshot(config.name, clock_.now());
    if (!s) return no_snapshot(config.name);
    BACKBONE_TRY(validate_snapshot_update(s->config, config));
    return change_catalog([&](Catalog& next) {
      for (auto& c : next.snapshots) {
        if (c.config.name == config.name) c.config = config;
      }
    });
  }

  Result<void> delete_snapshot(std::string_view name) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    if (!find_snapshot(name, clock_.now())) return no_snapshot(name);
    return change_catalog([&](Catalog& next) {
      std::erase_if(next.snapshots,
                    [&](const CatalogSnapshot& c) { return c.config.name == name; });
    });
  }

  Result<void> seek_to_time(std::string_view subscription, Timestamp time) override {
    std::unique_lock lk(mu_);
    auto s = seekable_locked(lk, subscription);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    if (!sub->topic) return {};  // its topic was deleted: it holds nothing to seek over
    const Topic& topic = *sub->topic;
    // A subscription sees what was published since it was made; of that, what is still held.
    if (topic.index.begin() > sub->start_offset && time.micros() <= topic.dropped_until_us) {
      std::optional<Timestamp> held_from;
      if (topic.index.begin() < topic.index.end()) {
        held_from = Timestamp::from_micros(topic.index.at(topic.index.begin()).publish_time_us);
      }
      return beyond_retention_error(subscription, time, held_from);
    }
    RestoredState to;
    to.lwm = std::max({topic.index.first_published_at_or_after(time.micros()), sub->start_offset,
                       topic.index.begin()});
    return reset_locked(lk, *sub, to);
  }

  Result<void> seek_to_snapshot(std::string_view subscription, std::string_view snapshot) override {
    std::unique_lock lk(mu_);
    auto s = seekable_locked(lk, subscription);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    const CatalogSnapshot* snap = find_snapshot(snapshot, clock_.now());
    if (!snap) return no_snapshot(snapshot);
    if (!sub->topic || sub->topic->id != snap->topic_id) {
      return make_error(Errc::kInvalidArgument,
                        "snapshot " + std::string(snapshot) + " was made on topic " +
                            snap->config.topic + ", not on subscription " +
                            std::string(subscription) + "'s topic",
                        "snapshot");
    }
    RestoredState to;
    to.lwm = std::max(snap->lwm, sub->topic->index.begin());  // compaction keeps snap->lwm on
    to.acked = snap->acked;
    return reset_locked(lk, *sub, to);
  }

  Result<void> detach_subscription(std::string_view name) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto s = find_sub(name);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    if (sub->state.config().detached) return {};
    SubscriptionConfig c = sub->state.config();
    c.detached = true;
    Catalog next = catalog_;
    for (auto& cs : next.subscriptions) {
      if (cs.id == sub->id) {
        cs.topic_id = 0;
        cs.config = c;
      }
    }
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    const uint64_t end = sub->topic ? sub->topic->index.end() : 0;
    sub->topic = nullptr;
    sub->state.set_config(std::move(c));
    sub->state.detach(end);
    return {};
  }

  Result<SchemaConfig> create_schema(const SchemaConfig& config) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    if (find_schema(config.name)) {
      return make_error(Errc::kAlreadyExists, "schema " + config.name + " exists");
    }
    auto revision = schema::make_revision(config, {}, clock_.now());
    if (!revision.ok()) return revision.error();
    BACKBONE_TRY(change_catalog([&](Catalog& next) { next.schemas.push_back({*revision}); }));
    return *revision;
  }

  Result<SchemaConfig> commit_schema(const SchemaConfig& config) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    const auto* held = find_schema(config.name);
    if (!held) return schema::no_schema(config.name);
    auto revision = schema::make_revision(config, *held, clock_.now());
    if (!revision.ok()) return revision.error();
    BACKBONE_TRY(change_catalog([&](Catalog& next) {
      for (auto& s : next.schemas) {
        if (s.front().name == config.name) s.insert(s.begin(), *revision);
      }
    }));
    return *revision;
  }

  Result<SchemaConfig> get_schema(std::string_view name, std::string_view revision) override {
    std::lock_guard lk(mu_);
    const auto* held = find_schema(name);
    if (!held) return schema::no_schema(name);
    return schema::find_revision(*held, revision);
  }

  Result<std::vector<SchemaConfig>> list_schemas() override {
    std::lock_guard lk(mu_);
    std::vector<SchemaConfig> out;
    for (const auto& s : catalog_.schemas) out.push_back(s.front());
    return out;
  }

  Result<std::vector<SchemaConfig>> list_schema_revisions(std::string_view name) override {
    std::lock_guard lk(mu_);
    const auto* held = find_schema(name);
    if (!held) return schema::no_schema(name);
    return *held;
  }

  Result<void> delete_schema(std::string_view name) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    if (!find_schema(name)) return schema::no_schema(name);
    return change_catalog([&](Catalog& next) {
      std::erase_if(next.schemas, [&](const auto& s) { return s.front().name == name; });
    });
  }

  Result<void> delete_schema_revision(std::string_view name, std::string_view revision) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    const auto* held = find_schema(name);
    if (!held) return schema::no_schema(name);
    schema::SchemaRevisions kept = *held;
    BACKBONE_TRY(schema::drop_revision(kept, revision));
    return change_catalog([&](Catalog& next) {
      for (auto& s : next.schemas) {
        if (s.front().name == name) s = kept;
      }
    });
  }

  Result<std::vector<std::string>> publish(std::string_view topic_name,
                                           std::span<const OutgoingMessage> messages) override {
    BACKBONE_TRY(validate_messages(messages));
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto t = find_topic(topic_name);
    if (!t.ok()) return t.error();
    std::vector<OutgoingMessage> admitted;
    if (const auto settings = (*t)->config.schema) {
      // Checked outside the lock: parsing every message is the slow part of a publish.
      const auto revisions = revisions_locked(settings->schema);
      lk.unlock();
      auto checked = schema_gate_.admit(*settings, revisions, messages);
      if (!checked.ok()) return checked.error();
      admitted = std::move(*checked);
      messages = admitted;
      lk.lock();
      BACKBONE_TRY(usable(lk));
      t = find_topic(topic_name);
      if (!t.ok()) return t.error();
    }
    std::vector<std::string> ids;
    ids.reserve(messages.size());
    const int64_t now = clock_.now().micros();
    for (const OutgoingMessage& m : messages) {
      ids.push_back(append_locked(**t, m.data, m.attributes, m.ordering_key, now));
    }
    BACKBONE_TRY(wait_durable(lk, mark_dirty_locked()));
    return ids;
  }

  Result<std::vector<ReceivedMessage>> pull(std::string_view subscription, size_t max,
                                            int64_t wait_us) override {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto s = find_sub(subscription);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    if (sub->state.config().detached) return detached_error(subscription);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::microseconds(wait_us);
    std::vector<Delivery> deliveries;
    for (;;) {
      if (!sub->topic) return std::vector<ReceivedMessage>{};
      Sink sink(*this, *sub);
      deliveries = sub->state.take(max, clock_.now(), sub->topic->index, sink);
      if (!deliveries.empty() || std::chrono::steady_clock::now() >= give_up) break;
      data_cv_.wait_until(
          lk, std::min(give_up, std::chrono::steady_clock::now() + std::chrono::milliseconds(50)));
      // The subscription may have been deleted while we waited.
      auto again = find_sub(subscription);
      if (!again.ok()) return again.error();
      sub = *again;
    }
    std::vector<ReceivedMessage> out;
    out.reserve(deliveries.size());
    for (const Delivery& d : deliveries) {
      auto m = sub->topic->log->read(sub->topic->index.at(d.offset));
      if (!m.ok()) return m.error();
      ReceivedMessage r;
      r.ack_id = delivery::encode_ack_id(std::to_string(sub->id), d.offset, d.generation);
      r.delivery_attempt = d.attempt;
      r.message.id = message_id(sub->topic->id, d.offset);
      r.message.data = std::move(m->data);
      r.message.attributes = std::move(m->attributes);
      r.message.ordering_key = std::move(m->ordering_key);
      r.message.publish_time = Timestamp::from_micros(m->publish_time_us);
      out.push_back(std::move(r));
    }
    if (journal_->has_pending() || dirty_) BACKBONE_TRY(wait_durable(lk, mark_dirty_locked()));
    return out;
  }

  Result<size_t> ack(std::string_view subscription, std::span<const std::string> ack_ids) override {
    size_t acked = 0;
    BACKBONE_TRY(for_each_delivery(
        subscription, ack_ids, [&](Sub& sub, uint64_t off, uint64_t gen, Sink& sink) {
          if (sub.state.ack(off, gen, sub.topic->index, sink, clock_.now())) ++acked;
        }));
    return acked;
  }

  Result<void> nack(std::string_view subscription, std::span<const std::string> ack_ids,
                    std::optional<int64_t> delay_us, std::string_view reason) override {
    if (delay_us) BACKBONE_TRY(validate_delay(*delay_us, "delay"));
    const std::string why(reason);
    return for_each_delivery(
        subscription, ack_ids, [&](Sub& sub, uint64_t off, uint64_t gen, Sink& sink) {
          sub.state.nack(off, gen, delay_us, why, clock_.now(), sub.topic->index, sink);
        });
  }

  Result<void> modify_ack_deadline(std::string_view subscription,
                                   std::span<const std::string> ack_ids,
                                   int64_t deadline_us) override {
    BACKBONE_TRY(validate_delay(deadline_us, "ack_deadline"));
    return for_each_delivery(
        subscription, ack_ids, [&](Sub& sub, uint64_t off, uint64_t gen, Sink& sink) {
          sub.state.modify_deadline(off, gen, deadline_us, clock_.now(), sub.topic->index, sink);
        });
  }

  Result<void> dead_letter(std::string_view subscription, const std::string& ack_id,
                           std::string_view reason) override {
    {
      std::lock_guard lk(mu_);
      auto s = find_sub(subscription);
      if (!s.ok()) return s.error();
      if (!(*s)->state.config().dead_letter) {
        return make_error(
            Errc::kInvalidArgument,
            "subscription " + std::string(subscription) + " has no dead-letter policy",
            "dead_letter_policy");
      }
    }
    const std::string why(reason);
    return for_each_delivery(
        subscription, std::span(&ack_id, 1), [&](Sub& sub, uint64_t off, uint64_t gen, Sink& sink) {
          sub.state.dead_letter(off, gen, why, clock_.now(), sub.topic->index, sink);
        });
  }

  // One process holds the folder.
  bool shares_subscriptions() const override { return false; }

  Result<SubscriptionStats> stats(std::string_view subscription) override {
    std::unique_lock lk(mu_);
    auto s = find_sub(subscription);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    if (!sub->topic) return SubscriptionStats{0, 0, 0, sub->state.dead_lettered()};
    Sink sink(*this, *sub);
    (void)sub->state.take(0, clock_.now(), sub->topic->index, sink);  // expire deadlines
    if (journal_->has_pending()) mark_dirty_locked();
    return sub->state.stats(clock_.now(), sub->topic->index);
  }

 private:
  // Turns the state machine's decisions into journal records and dead-letter publishes.
  class Sink final : public delivery::JournalSink {
   public:
    Sink(EmbeddedBroker& b, Sub& s) : JournalSink(s.id), b_(b), s_(s) {}

   private:
    void write(const JournalRecord& r) override { b_.journal_->append(r); }
    void forward_dead_letter(uint64_t offset, int attempt, const std::string& reason) override {
      b_.forward_dead_letter(s_, offset, attempt, reason);
    }

    EmbeddedBroker& b_;
    Sub& s_;
  };

  template <typename Fn>
  Result<void> for_each_delivery(std::string_view subscription,
                                 std::span<const std::string> ack_ids, Fn&& fn) {
    std::unique_lock lk(mu_);
    BACKBONE_TRY(usable(lk));
    auto s = find_sub(subscription);
    if (!s.ok()) return s.error();
    Sub* sub = *s;
    if (!sub->topic) return {};
    Sink sink(*this, *sub);
    const std::string owner = std::to_string(sub->id);
    for (const std::string& ack_id : ack_ids) {
      auto id = delivery::parse_ack_id(ack_id);
      if (!id.ok()) return id.error();
      if (id->owner != owner) continue;  // another subscription's, or an old one's: stale
      fn(*sub, id->offset, id->generation, sink);
    }
    if (journal_->has_pending() || dirty_) BACKBONE_TRY(wait_durable(lk, mark_dirty_locked()));
    data_cv_.notify_all();  // acks free ordering keys; nacks may make messages deliverable
    return {};
  }

  // REQUIRES: mu_ held.
  void forward_dead_letter(Sub& sub, uint64_t offset, int attempt, const std::string& reason) {
    const auto& policy = sub.state.config().dead_letter;
    BACKBONE_ASSERT(policy.has_value() && sub.topic);
    auto it = topics_.find(policy->topic);
    BACKBONE_ASSERT(it != topics_.end());  // delete_topic refuses a dead-letter topic in use
    auto m = sub.topic->log->read(sub.topic->index.at(offset));
    if (!m.ok()) {
      // A durable message cannot be read back: its dead letter cannot be written, so the
      // journal must not record it either. Nothing more is written until a restart.
      broken_ = m.error();
      return;
    }
    Attributes attrs = std::move(m->attributes);
    add_dead_letter_attributes(attrs, attempt, reason, sub.state.config().name,
                               message_id(sub.topic->id, offset), clock_.now());
    (void)append_locked(*it->second, m->data, attrs, m->ordering_key, clock_.now().micros());
  }

  // REQUIRES: mu_ held. Buffers one message; it becomes visible once the flusher made it durable.
  std::string append_locked(Topic& t, const std::string& data, const Attributes& attrs,
                            const std::string& key, int64_t now) {
    StoredMessage sm;
    sm.offset = t.log->next_offset();
    sm.publish_time_us = now;
    sm.ordering_key = key;
    sm.attributes = attrs;
    sm.data = data;
    t.unapplied.emplace_back(sm.offset, t.log->append(sm));
    dirty_ = true;
    return message_id(t.id, sm.offset);
  }

  uint64_t mark_dirty_locked() {
    dirty_ = true;
    flush_cv_.notify_one();
    return open_cycle_;
  }

  // Waits until the batch `ticket` is durable; its error when the write of that batch failed.
  Result<void> wait_durable(std::unique_lock<std::mutex>& lk, uint64_t ticket) {
    durable_cv_.wait(lk, [&] {
      return durable_cycle_ >= ticket || failed_cycle_ >= ticket || broken_ || stop_;
    });
    if (durable_cycle_ >= ticket) return {};
    if (broken_ || stop_) return usable(lk);
    // A later attempt that succeeded would have made this batch durable too.
    return unavailable(*failed_);
  }

  // Whether a call may go on. While writes fail (a full disk), it has the flusher try them
  // again first, so that the broker resumes by itself once there is space.
  Result<void> usable(std::unique_lock<std::mutex>& lk) {
    if (broken_) {
      return make_error(Errc::kUnavailable,
                        "the embedded broker stopped after a storage error: " + broken_->message);
    }
    if (stop_) return make_error(Errc::kUnavailable, "the embedded broker is closing");
    if (!failed_) return {};
    const uint64_t seen = attempts_;
    retry_now_ = true;
    flush_cv_.notify_one();
    durable_cv_.wait(lk, [&] { return attempts_ > seen || stop_; });
    if (stop_) return make_error(Errc::kUnavailable, "the embedded broker is closing");
    if (failed_) return unavailable(*failed_);
    return {};
  }

  static Error unavailable(const Error& cause) {
    return make_error(
        Errc::kUnavailable,
        "the embedded broker cannot write (it tries again by itself): " + cause.message);
  }

  // Makes the buffered work durable in batches. A batch whose write fails is kept whole and
  // written again, with what accumulated since, every kRetryInterval or when a caller asks; its
  // own callers are answered with the error at once. Nothing is dropped from memory, so the
  // state on disk catches up with the state served.
  void flush_loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      if (broken_) {
        // forward_dead_letter could not write a dead letter: recording it would lose the message.
        flush_cv_.wait(lk, [&] { return stop_; });
        return;
      }
      if (failed_) {
        flush_cv_.wait_for(lk, kRetryInterval, [&] { return stop_ || retry_now_; });
        // Stopping while writes fail: what is not durable was never acknowledged as such.
        if (stop_) return;
      } else {
        flush_cv_.wait(lk, [&] { return stop_ || dirty_ || journal_->has_pending(); });
        if (stop_ && !dirty_ && !journal_->has_pending()) return;
      }
      retry_now_ = false;
      SegmentLog::Pending writes = std::exchange(carried_.writes, {});
      std::vector<Unapplied> apply = std::exchange(carried_.apply, {});
      std::string journal_bytes = std::exchange(carried_.journal, {});
      for (auto& [name, t] : topics_) {
        t->log->take_pending(writes);
        for (auto& [off, ref] : t->unapplied) apply.emplace_back(t->id, off, ref);
        t->unapplied.clear();
      }
      journal_->take_pending(journal_bytes);
      // A checkpoint writes the whole state as it is now, which holds every record pending.
      const bool checkpoint = std::exchange(carried_.checkpoint, false) ||
                              journal_->size() + journal_bytes.size() > options_.checkpoint_bytes;
      std::string snapshot;
      if (checkpoint) snapshot = snapshot_locked();
      const uint64_t cycle = open_cycle_++;
      dirty_ = false;
      lk.unlock();
      Result<void> r = SegmentLog::write_pending(writes);
      if (r.ok()) r = checkpoint ? journal_->rewrite(snapshot) : journal_->write(journal_bytes);
      lk.lock();
      if (!r.ok()) {
        failed_ = r.error();
        failed_cycle_ = cycle;
        carried_ = {std::move(writes), std::move(apply),
                    checkpoint ? std::string() : std::move(journal_bytes), checkpoint};
      } else {
        failed_.reset();
        for (auto& [topic_id, off, ref] : apply) {
          auto it = topics_by_id_.find(topic_id);
          if (it == topics_by_id_.end()) continue;  // deleted meanwhile
          if (off == it->second->index.end()) it->second->index.push_back(ref);
        }
        compact_locked();
        durable_cycle_ = cycle;
      }
      ++attempts_;
      durable_cv_.notify_all();
      data_cv_.notify_all();
    }
  }

  // The journal's replacement: per subscription, a base record and what lies above it.
  std::string snapshot_locked() const {
    std::string out;
    for (const auto& [id, sub] : subs_by_id_) delivery::encode_snapshot(id, sub->state, out);
    return out;
  }

  // Drops the segments that every subscription of a topic has acked, that its unexpired
  // snapshots do not need, and that are older than its retention; the index keeps every message
  // of the segments kept (acked ones too), which a seek can go back to.
  void compact_locked() {
    const Timestamp now = clock_.now();
    for (auto& [name, t] : topics_) {
      uint64_t keep = t->index.end();
      for (const auto& [id, s] : subs_by_id_) {
        if (s->topic == t.get()) keep = std::min(keep, s->state.low_water_mark());
      }
      for (const auto& snap : catalog_.snapshots) {
        if (snap.topic_id == t->id && now < snap.config.expire_time)
          keep = std::min(keep, snap.lwm);
      }
      if (t->config.retention_us) {
        keep = std::min(
            keep, t->index.first_published_at_or_after(now.micros() - *t->config.retention_us));
      }
      if (keep <= t->index.begin()) continue;
      t->log->drop_before(keep);
      const uint64_t held = std::min(t->log->first_offset(), keep);
      if (held > t->index.begin()) {
        t->dropped_until_us = std::max(t->dropped_until_us, t->index.at(held - 1).publish_time_us);
        t->index.drop_before(held);
      }
    }
  }

  Result<Topic*> find_topic(std::string_view name) {
    auto it = topics_.find(name);
    if (it == topics_.end()) {
      return make_error(Errc::kNotFound, "topic " + std::string(name) + " does not exist");
    }
    return it->second.get();
  }
  Result<Sub*> find_sub(std::string_view name) {
    auto it = subs_.find(name);
    if (it == subs_.end()) {
      return make_error(Errc::kNotFound, "subscription " + std::string(name) + " does not exist");
    }
    return it->second.get();
  }
  // The subscription a seek names: usable, not detached. REQUIRES: mu_ held (by `lk`).
  Result<Sub*> seekable_locked(std::unique_lock<std::mutex>& lk, std::string_view subscription) {
    BACKBONE_TRY(usable(lk));
    auto s = find_sub(subscription);
    if (!s.ok()) return s.error();
    if ((*s)->state.config().detached) return detached_error(subscription);
    return s;
  }
  // Saves the catalog as `change` makes it, and keeps it once it is on disk. REQUIRES: mu_ held.
  template <typename Change>
  Result<void> change_catalog(Change&& change) {
    Catalog next = catalog_;
    change(next);
    BACKBONE_TRY(save_catalog(catalog_path(), next));
    catalog_ = std::move(next);
    return {};
  }
  // A schema's revisions; nullptr when there is none. REQUIRES: mu_ held.
  const schema::SchemaRevisions* find_schema(std::string_view name) const {
    for (const auto& s : catalog_.schemas) {
      if (s.front().name == name) return &s;
    }
    return nullptr;
  }
  Result<schema::SchemaRevisions> revisions_locked(std::string_view name) const {
    const auto* held = find_schema(name);
    if (!held) return schema::no_schema(name);
    return *held;
  }
  // An unexpired snapshot. REQUIRES: mu_ held.
  const CatalogSnapshot* find_snapshot(std::string_view name, Timestamp now) const {
    for (const auto& s : catalog_.snapshots) {
      if (s.config.name == name && now < s.config.expire_time) return &s;
    }
    return nullptr;
  }
  static Error no_snapshot(std::string_view name) {
    return make_error(Errc::kNotFound, "snapshot " + std::string(name) + " does not exist");
  }
  // A seek: the subscription's state becomes `to`, written to the journal as a base and its acks
  // (a replay then starts the subscription over from them), and durable before it returns.
  // REQUIRES: mu_ held (by `lk`), sub.topic set.
  Result<void> reset_locked(std::unique_lock<std::mutex>& lk, Sub& sub, const RestoredState& to) {
    sub.state.reset(to, sub.topic->index, clock_.now());
    std::string framed;
    delivery::encode_snapshot(sub.id, sub.state, framed);
    journal_->append_framed(framed);
    BACKBONE_TRY(wait_durable(lk, mark_dirty_locked()));
    data_cv_.notify_all();
    return {};
  }
  Result<void> check_dead_letter_topic(const SubscriptionConfig& c) {
    if (c.dead_letter && !topics_.count(c.dead_letter->topic)) {
      return make_error(Errc::kNotFound,
                        "dead-letter topic " + c.dead_letter->topic + " does not exist",
                        "dead_letter_policy.topic");
    }
    return {};
  }
  uint64_t next_generation_seed() {
    // Ack ids from an earlier run of the broker must never match: start each subscription's
    // generations at a random point.
    static thread_local std::mt19937_64 rng(std::random_device{}());
    return (rng() >> 16) + 1;
  }
  std::string topic_dir(uint32_t id) const {
    return options_.dir + "/topics/" + std::to_string(id);
  }
  std::string catalog_path() const { return options_.dir + "/catalog.json"; }

  EmbeddedOptions options_;
  const Clock& clock_;
  int lock_fd_;
  std::mutex mu_;
  std::condition_variable flush_cv_, durable_cv_, data_cv_;
  Catalog catalog_;  // GUARDED_BY(mu_)
  schema::SchemaGate schema_gate_;
  std::map<std::string, std::unique_ptr<Topic>, std::less<>> topics_;  // GUARDED_BY(mu_)
  std::map<uint32_t, Topic*> topics_by_id_;                            // GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<Sub>, std::less<>> subs_;      // GUARDED_BY(mu_)
  std::map<uint32_t, Sub*> subs_by_id_;                                // GUARDED_BY(mu_)
  std::unique_ptr<StateJournal> journal_;
  uint64_t open_cycle_ = 1;      // GUARDED_BY(mu_): the batch now being filled
  uint64_t durable_cycle_ = 0;   // GUARDED_BY(mu_): the last batch made durable
  uint64_t failed_cycle_ = 0;    // GUARDED_BY(mu_): the last batch whose write failed
  uint64_t attempts_ = 0;        // GUARDED_BY(mu_): batches the flusher tried to write
  bool dirty_ = false;           // GUARDED_BY(mu_)
  bool stop_ = false;            // GUARDED_BY(mu_)
  bool retry_now_ = false;       // GUARDED_BY(mu_): a caller waits for another attempt
  std::optional<Error> failed_;  // GUARDED_BY(mu_): the last attempt's error, while they fail
  std::optional<Error> broken_;  // GUARDED_BY(mu_): a durable message could not be read back
  // GUARDED_BY(mu_): the batch whose write failed, written again before anything newer.
  struct Carried {
    SegmentLog::Pending writes;
    std::vector<Unapplied> apply;
    std::string journal;
    bool checkpoint = false;
  } carried_;
  std::thread flusher_;
};

Result<void> EmbeddedBroker::recover() {
  auto catalog = load_catalog(catalog_path());
  if (!catalog.ok()) return catalog.error();
  catalog_ = std::move(*catalog);
  for (const CatalogTopic& ct : catalog_.topics) {
    auto topic = std::make_unique<Topic>();
    topic->id = ct.id;
    topic->config = ct.config;
    bool first = true;
    Topic* raw = topic.get();
    auto log = SegmentLog::open(topic_dir(ct.id), options_.segment_bytes,
                                [&](uint64_t offset, const MsgRef& ref) {
                                  if (first) raw->index = TopicIndex(offset);
                                  first = false;
                                  raw->index.push_back(ref);
                                });
    if (!log.ok()) return log.error();
    topic->log = std::move(*log);
    if (first) topic->index = TopicIndex(topic->log->next_offset());
    if (topic->index.begin() > 0) {  // something was dropped, published no later than what is held
      topic->dropped_until_us = topic->index.begin() < topic->index.end()
                                    ? topic->index.at(topic->index.begin()).publish_time_us
                                    : clock_.now().micros();
    }
    topics_by_id_[ct.id] = topic.get();
    topics_.emplace(ct.config.name, std::move(topic));
  }
  delivery::JournalFold fold;
  auto journal = StateJournal::open(options_.dir + "/state.journal",
                                    [&](const JournalRecord& r) { fold.apply(r); });
  if (!journal.ok()) return journal.error();
  journal_ = std::move(*journal);
  const Timestamp now = clock_.now();
  for (const CatalogSubscription& cs : catalog_.subscriptions) {
    Topic* topic = nullptr;
    if (auto it = topics_by_id_.find(cs.topic_id); it != topics_by_id_.end()) topic = it->second;
    auto sub =
        std::make_unique<Sub>(cs.id, cs.start_offset, topic, cs.config, next_generation_seed());
    if (topic) {
      RestoredState& r = fold.state(cs.id);
      r.lwm = std::max({r.lwm, cs.start_offset, topic->index.begin()});
      sub->state.restore(r, topic->index, now);
    }
    sub->state.set_dead_lettered(fold.dead_lettered(cs.id));
    subs_by_id_[cs.id] = sub.get();
    subs_.emplace(cs.config.name, std::move(sub));
  }
  return {};
}

}  // namespace

Result<EmbeddedOptions> parse_embedded_url(std::string_view url) {
  constexpr std::string_view kScheme = "embedded://";
  if (!url.starts_with(kScheme)) {
    return make_error(Errc::kInvalidArgument, "want embedded://path", "broker");
  }
  std::string_view rest = url.substr(kScheme.size());
  EmbeddedOptions o;
  const size_t q = rest.find('?');
  o.dir = std::string(rest.substr(0, q));
  if (o.dir.empty())
    return make_error(Errc::kInvalidArgument, "no folder in " + std::string(url), "broker");
  if (q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view kv = query.substr(0, amp);
      const size_t eq = kv.find('=');
      const std::string key(kv.substr(0, eq));
      const std::string value = eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1));
      uint64_t n = 0;
      try {
        n = std::stoull(value);
      } catch (...) {
        return make_error(Errc::kInvalidArgument, "option " + key + " wants a number", "broker");
      }
      if (key == "segment_bytes") {
        o.segment_bytes = std::max<uint64_t>(n, 256);
      } else if (key == "checkpoint_bytes") {
        o.checkpoint_bytes = std::max<uint64_t>(n, 256);
      } else {
        return make_error(Errc::kInvalidArgument, "unknown option " + key, "broker");
      }
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
  }
  return o;
}

Result<std::unique_ptr<Broker>> open_embedded_broker(const EmbeddedOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir + "/topics", ec);
  if (ec)
    return make_error(Errc::kUnavailable, "cannot create " + options.dir + ": " + ec.message());
  const std::string lock_path = options.dir + "/LOCK";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(Errc::kUnavailable, "cannot open " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return make_error(Errc::kUnavailable,
                      "the embedded broker at " + options.dir + " is open in another process");
  }
  auto broker = std::make_unique<EmbeddedBroker>(options, fd);
  BACKBONE_TRY(broker->recover());
  broker->start();
  return std::unique_ptr<Broker>(std::move(broker));
}

}  // namespace backbone::embedded
