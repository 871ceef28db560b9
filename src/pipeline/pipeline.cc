#include "pipeline/pipeline.h"

#include <algorithm>
#include <chrono>

#include "backbone/log.h"
#include "core/json_internal.h"
#include "pipeline/dlq.h"
#include "pipeline/messages.h"

namespace backbone::pipeline {
namespace {

// Deliveries merged as one batch.
constexpr size_t kMergeBatch = 500;
// Events the relay reads from the outbox and publishes at a time.
constexpr size_t kRelayPage = 1000;

}  // namespace

Result<std::unique_ptr<EnvironmentPipeline>> EnvironmentPipeline::open(const PipelineOptions& o) {
  BACKBONE_ASSERT(o.broker && o.topology);
  std::unique_ptr<EnvironmentPipeline> p(new EnvironmentPipeline(o));
  const Clock& clock = o.clock ? *o.clock : SystemClock::instance();
  p->o_.clock = &clock;
  // The options are kept (p->o_) and the clock outlives the pipeline.
  auto open_as = [opts = &p->o_](Role role) {
    StoreOptions so;
    so.url = opts->store_url;
    so.role = role;
    so.durability = opts->durability;
    so.clock = opts->clock;
    so.ids = opts->ids;
    return opts->open_store ? opts->open_store(role) : EventStore::open(so);
  };
  for (auto [role, slot] : {std::pair{Role::kSyncWorker, &p->ingest_store_},
                            std::pair{Role::kMergeWorker, &p->merge_store_}}) {
    auto store = open_as(role);
    if (!store.ok()) return store.error();
    *slot = std::move(*store);
  }
  auto raw = o.topology->subscription_for("merge", o.env);
  if (!raw.ok()) return raw.error();
  auto retry = o.topology->subscription_for("retry", o.env);
  if (!retry.ok()) return retry.error();
  p->raw_subscription_ = raw->name;
  p->retry_subscription_ = retry->name;
  auto audit = o.topology->subscription_for("audit", o.env);
  if (!audit.ok()) return audit.error();
  auto inspect = o.topology->subscription_for("inspect", o.env);
  if (!inspect.ok()) return inspect.error();
  p->audit_subscription_ = audit->name;
  p->inspect_subscription_ = inspect->name;
  p->projector_ = std::make_unique<AuditProjector>(*p->merge_store_, o.metrics, o.env);
  p->inspector_ = std::make_unique<DlqInspector>(*p->merge_store_,
                                                 [open_as] { return open_as(Role::kReader); });
  p->publisher_ = std::make_unique<EnvPublisher>(*o.broker, *o.topology, o.env, o.environments);
  MergerDeps deps;
  deps.store = p->merge_store_.get();
  deps.broker = o.broker;
  deps.publisher = p->publisher_.get();
  deps.clock = &clock;
  deps.settings = o.settings;
  deps.retry_subscription = retry->name;
  deps.retry_policy = retry->retry;
  deps.max_attempts = retry->dead_letter ? retry->dead_letter->max_delivery_attempts : 5;
  deps.metrics = o.metrics;
  deps.env = o.env;
  deps.fence = o.fence;
  p->merger_ = std::make_unique<Merger>(std::move(deps));
  return p;
}

EnvironmentPipeline::~EnvironmentPipeline() { stop(); }

Result<std::vector<IngestOutcome>> EnvironmentPipeline::ingest(std::span<const EventDraft> drafts) {
  EventIdGenerator& ids = o_.ids ? *o_.ids : EventIdGenerator::process();
  auto events = create_events(drafts, ids, *o_.clock);
  if (!events.ok()) return events.error();
  PendingIngest mine{*events, make_error(Errc::kInternal, "not run")};
  ingest_group_.submit(mine, [this](std::vector<PendingIngest*>& group) { store_group(group); });
  return std::move(mine.result);
}

void EnvironmentPipeline::store_group(std::vector<PendingIngest*>& group) {
  std::lock_guard lock(ingest_mu_);
  // One append for the whole group. A failure that names an item (an id stored before) fails
  // that item's request alone: the others are appended again without it.
  std::vector<PendingIngest*> live = group;
  std::vector<AppendOutcome> stored;
  std::vector<Event> joined;
  for (;;) {
    std::span<const Event> all = live.front()->events;
    if (live.size() > 1) {
      joined.clear();
      for (PendingIngest* p : live) joined.insert(joined.end(), p->events.begin(), p->events.end());
      all = joined;
    }
    auto r = ingest_store_->append(all);
    if (r.ok()) {
      stored = std::move(*r);
      break;
    }
    const Error e = r.error();
    const std::optional<size_t> at = e.item ? std::optional<size_t>(e.item->index) : std::nullopt;
    if (live.size() == 1 || !at) {
      for (PendingIngest* p : live) p->result = e;
      return;
    }
    size_t start = 0;
    for (auto it = live.begin(); it != live.end(); start += (*it)->events.size(), ++it) {
      if (*at >= start + (*it)->events.size()) continue;
      Error own = e;
      own.item->index = *at - start;
      (*it)->result = own;
      live.erase(it);
      break;
    }
  }
  std::vector<OutgoingMessage> raw;
  std::vector<EventId> fresh;
  size_t at = 0;
  for (PendingIngest* p : live) {
    std::vector<IngestOutcome> out;
    out.reserve(p->events.size());
    for (const Event& e : p->events) {
      const AppendOutcome& a = stored[at++];
      out.push_back({a.id, a.fingerprint, a.duplicate});
      if (!a.duplicate) {
        raw.push_back(raw_message(e));
        fresh.push_back(a.id);
      }
    }
    p->result = std::move(out);
  }
  if (o_.metrics) {
    const Labels env = {{"env", o_.env}};
    o_.metrics->counter("backbone_ingested_events_total", "Events stored by ingest", env)
        .inc(static_cast<double>(raw.size()));
    o_.metrics
        ->counter("backbone_duplicate_events_total", "Ingested events that were duplicates", env)
        .inc(static_cast<double>(stored.size() - raw.size()));
  }
  if (raw.empty()) return;
  auto published = publisher_->publish(TopicFamily::kRaw, raw);
  if (!published.ok()) {
    // Stored but not published: they stay in the outbox, and the relay publishes them.
    Error e = published.error();
    e.message =
        "the events are stored, but publishing them failed (they will be relayed): " + e.message;
    for (PendingIngest* p : live) p->result = e;
    return;
  }
  // Failing here leaves them in the outbox: the relay publishes them once more.
  (void)ingest_store_->published(fresh);
}

Result<size_t> EnvironmentPipeline::relay(std::optional<int64_t> min_age_us) {
  std::lock_guard lock(ingest_mu_);
  size_t relayed = 0;
  for (;;) {
    auto page =
        ingest_store_->outbox(o_.clock->now().plus_micros(-min_age_us.value_or(0)), kRelayPage);
    if (!page.ok()) return page.error();
    std::vector<OutgoingMessage> raw;
    std::vector<EventId> ids;
    for (const StoredEvent& e : *page) {
      ids.push_back(e.event.id());
      // One merged meanwhile (published, then a crash before it left the outbox) is not sent
      // again.
      if (!e.processed) raw.push_back(raw_message(e.event));
    }
    if (!raw.empty()) {
      auto published = publisher_->publish(TopicFamily::kRaw, raw);
      if (!published.ok()) return published.error();
      relayed += raw.size();
    }
    if (!ids.empty()) BACKBONE_TRY(ingest_store_->published(ids));
    if (page->size() < kRelayPage) return relayed;
  }
}

void EnvironmentPipeline::run_relay() {
  std::unique_lock lk(relay_mu_);
  while (!relay_stop_) {
    relay_wake_.wait_for(lk, std::chrono::microseconds(o_.relay_interval_us));
    if (relay_stop_) break;
    if (o_.relays_here && !o_.relays_here()) continue;
    lk.unlock();
    auto r = relay(o_.relay_grace_us);
    if (!r.ok() && o_.on_stage_error) o_.on_stage_error("relay", r.error());
    lk.lock();
  }
}

void EnvironmentPipeline::start() {
  auto reporter = [this](const std::string& subscription) -> StreamingConsumer::ErrorHandler {
    if (!o_.on_stage_error) return nullptr;
    return [this, subscription](const Error& e) { o_.on_stage_error(subscription, e); };
  };
  StreamingConsumer::Options opts;
  opts.workers = o_.workers;
  // A pull is merged as one batch (one store transaction, one publish per topic); while one
  // worker waits for its commit to be durable, another reads and decides the next pull.
  opts.max_messages = kMergeBatch;
  merge_consumer_ = std::make_unique<StreamingConsumer>(
      *o_.broker, raw_subscription_,
      StreamingConsumer::BatchHandler(
          [this](std::span<const ReceivedMessage> b) { return merger_->on_raw(b); }),
      opts, reporter(raw_subscription_));
  retry_consumer_ = std::make_unique<StreamingConsumer>(
      *o_.broker, retry_subscription_,
      StreamingConsumer::BatchHandler(
          [this](std::span<const ReceivedMessage> b) { return merger_->on_retry(b); }),
      opts, reporter(retry_subscription_));
  merge_consumer_->start();
  retry_consumer_->start();
  if (o_.watchers) {
    StreamingConsumer::Options w;
    w.max_messages = kMergeBatch;
    projector_consumer_ = std::make_unique<StreamingConsumer>(
        *o_.broker, audit_subscription_,
        StreamingConsumer::Handler(
            [this](const ReceivedMessage& m) { return projector_->on_message(m); }),
        w, reporter(audit_subscription_));
    inspector_consumer_ = std::make_unique<StreamingConsumer>(
        *o_.broker, inspect_subscription_,
        StreamingConsumer::Handler(
            [this](const ReceivedMessage& m) { return inspector_->on_message(m); }),
        w, reporter(inspect_subscription_));
    projector_consumer_->start();
    inspector_consumer_->start();
  }
  {
    std::lock_guard lk(relay_mu_);
    relay_stop_ = false;
  }
  if (o_.relay_interval_us > 0) relay_thread_ = std::thread([this] { run_relay(); });
}

void EnvironmentPipeline::stop() {
  {
    std::lock_guard lk(relay_mu_);
    relay_stop_ = true;
  }
  relay_wake_.notify_all();
  if (relay_thread_.joinable()) relay_thread_.join();
  if (merge_consumer_) merge_consumer_->stop();
  if (retry_consumer_) retry_consumer_->stop();
  if (projector_consumer_) projector_consumer_->stop();
  if (inspector_consumer_) inspector_consumer_->stop();
  merge_consumer_.reset();
  retry_consumer_.reset();
  projector_consumer_.reset();
  inspector_consumer_.reset();
}

Result<size_t> EnvironmentPipeline::drain(const std::string& subscription, bool raw) {
  size_t settled = 0;
  for (;;) {
    auto got = o_.broker->pull(subscription, kMergeBatch);
    if (!got.ok()) return got.error();
    if (got->empty()) return settled;
    const std::vector<ConsumerDecision> decisions =
        raw ? merger_->on_raw(*got) : merger_->on_retry(*got);
    for (size_t i = 0; i < got->size(); ++i) {
      BACKBONE_TRY(settle(*o_.broker, subscription, (*got)[i], decisions[i]));
      ++settled;
    }
  }
}

Result<size_t> EnvironmentPipeline::step_watchers() {
  size_t settled = 0;
  for (auto [subscription, handler] :
       {std::pair<const std::string&, StreamingConsumer::Handler>{
            audit_subscription_,
            [this](const ReceivedMessage& m) { return projector_->on_message(m); }},
        std::pair<const std::string&, StreamingConsumer::Handler>{
            inspect_subscription_,
            [this](const ReceivedMessage& m) { return inspector_->on_message(m); }}}) {
    for (;;) {
      auto got = o_.broker->pull(subscription, kMergeBatch);
      if (!got.ok()) return got.error();
      if (got->empty()) break;
      for (const ReceivedMessage& m : *got) {
        BACKBONE_TRY(settle(*o_.broker, subscription, m, handler(m)));
        ++settled;
      }
    }
  }
  return settled;
}

Result<size_t> EnvironmentPipeline::step() {
  size_t total = 0;
  for (;;) {
    auto a = drain(raw_subscription_, true);
    if (!a.ok()) return a.error();
    auto b = drain(retry_subscription_, false);
    if (!b.ok()) return b.error();
    total += *a + *b;
    if (*a + *b == 0) return total;
  }
}

Result<std::vector<DlqEntry>> EnvironmentPipeline::dlq_list() {
  return list_dead_letters(*ingest_store_);
}

std::vector<PoisonLetter> EnvironmentPipeline::dlq_poison() const { return inspector_->poison(); }

Result<DlqEntry> EnvironmentPipeline::dlq_show(const EventId& id) {
  return show_dead_letter(*ingest_store_, id);
}

Result<void> EnvironmentPipeline::send_back(const DlqEntry& entry, const std::string& detail) {
  const Event& ev = entry.event.event;
  std::lock_guard lock(ingest_mu_);
  AuditDraft replayed{ev.id(), ev.record_key(), AuditAction::kReplayed, ev.fingerprint(), detail};
  auto a = ingest_store_->append_audit(std::span(&replayed, 1));
  if (!a.ok()) return a.error();
  OutgoingMessage m = raw_message(ev);
  auto published = publisher_->publish(TopicFamily::kRaw, std::span(&m, 1));
  if (!published.ok()) return published.error();
  log::debug("dlq.replay", {{"env", o_.env},
                            {"event", ev.id().str()},
                            {"record", ev.record_type() + "/" + ev.record_id()},
                            {"detail", detail}});
  return {};
}

Result<void> EnvironmentPipeline::dlq_replay(const EventId& id, const std::string& actor) {
  auto entry = dlq_show(id);
  if (!entry.ok()) return entry.error();
  return send_back(*entry, json_internal::canonical_text({{"from", "dlq"}, {"by", actor}}));
}

Result<std::vector<DlqEntry>> EnvironmentPipeline::dlq_replay_all(const DlqFilter& filter,
                                                                  bool dry_run,
                                                                  const std::string& actor) {
  auto chosen = select_dead_letters(*ingest_store_, filter);
  if (!chosen.ok()) return chosen.error();
  if (dry_run) return chosen;
  const std::string detail = json_internal::canonical_text({{"from", "dlq"}, {"by", actor}});
  for (const DlqEntry& e : *chosen) BACKBONE_TRY(send_back(e, detail));
  return chosen;
}

Result<void> EnvironmentPipeline::dlq_resolve(const EventId& id, DlqResolution how,
                                              const std::string& actor, const std::string& note) {
  auto entry = dlq_show(id);
  if (!entry.ok()) return entry.error();
  if (how == DlqResolution::kAccept) {
    return send_back(
        *entry, json_internal::canonical_text(
                    {{"from", "dlq"}, {"resolution", "accept"}, {"by", actor}, {"note", note}}));
  }
  const Event& ev = entry->event.event;
  AuditDraft closed{ev.id(), ev.record_key(), AuditAction::kDeadLettered, ev.fingerprint(),
                    json_internal::canonical_text(
                        {{"reason", "discarded by " + actor + (note.empty() ? "" : ": " + note)},
                         {"resolution", "discarded"},
                         {"by", actor},
                         {"note", note},
                         {"stage", dlq_stage(*entry)}})};
  auto a = ingest_store_->append_audit(std::span(&closed, 1));
  if (!a.ok()) return a.error();
  log::debug("dlq.discard", {{"env", o_.env},
                             {"event", ev.id().str()},
                             {"record", ev.record_type() + "/" + ev.record_id()},
                             {"by", actor}});
  return {};
}

}  // namespace backbone::pipeline
