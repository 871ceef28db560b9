#include "pipeline/pipeline.h"

#include <algorithm>

#include "pipeline/dlq.h"
#include "pipeline/messages.h"

namespace backbone::pipeline {

Result<std::unique_ptr<EnvironmentPipeline>> EnvironmentPipeline::open(const PipelineOptions& o) {
  BACKBONE_ASSERT(o.broker && o.topology);
  std::unique_ptr<EnvironmentPipeline> p(new EnvironmentPipeline(o));
  const Clock& clock = o.clock ? *o.clock : SystemClock::instance();
  p->o_.clock = &clock;
  for (auto [role, slot] : {std::pair{Role::kSyncWorker, &p->ingest_store_},
                            std::pair{Role::kMergeWorker, &p->merge_store_}}) {
    StoreOptions so;
    so.url = o.store_url;
    so.role = role;
    so.durability = o.durability;
    so.clock = &clock;
    so.ids = o.ids;
    auto store = o.open_store ? o.open_store(role) : EventStore::open(so);
    if (!store.ok()) return store.error();
    *slot = std::move(*store);
  }
  auto raw = o.topology->subscription_for("merge", o.env);
  if (!raw.ok()) return raw.error();
  auto retry = o.topology->subscription_for("retry", o.env);
  if (!retry.ok()) return retry.error();
  p->raw_subscription_ = raw->name;
  p->retry_subscription_ = retry->name;
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
  p->merger_ = std::make_unique<Merger>(std::move(deps));
  return p;
}

EnvironmentPipeline::~EnvironmentPipeline() { stop(); }

Result<std::vector<IngestOutcome>> EnvironmentPipeline::ingest(std::span<const EventDraft> drafts) {
  EventIdGenerator& ids = o_.ids ? *o_.ids : EventIdGenerator::process();
  auto events = create_events(drafts, ids, *o_.clock);
  if (!events.ok()) return events.error();
  std::lock_guard lock(ingest_mu_);
  auto stored = ingest_store_->append(*events);
  if (!stored.ok()) return stored.error();
  std::vector<OutgoingMessage> raw;
  std::vector<IngestOutcome> out;
  for (size_t i = 0; i < stored->size(); ++i) {
    const AppendOutcome& a = (*stored)[i];
    out.push_back({a.id, a.fingerprint, a.duplicate});
    if (!a.duplicate) raw.push_back(raw_message((*events)[i]));
  }
  if (o_.metrics) {
    const Labels env = {{"env", o_.env}};
    o_.metrics->counter("backbone_ingested_events_total", "Events stored by ingest", env)
        .inc(static_cast<double>(raw.size()));
    o_.metrics
        ->counter("backbone_duplicate_events_total", "Ingested events that were duplicates", env)
        .inc(static_cast<double>(out.size() - raw.size()));
  }
  if (!raw.empty()) {
    auto published = publisher_->publish(TopicFamily::kRaw, raw);
    if (!published.ok()) {
      // Stored but not published: the relay publishes them when the pipeline starts again.
      Error e = published.error();
      e.message =
          "the events are stored, but publishing them failed (they will be relayed): " + e.message;
      return e;
    }
  }
  return out;
}

Result<size_t> EnvironmentPipeline::relay() {
  std::lock_guard lock(ingest_mu_);
  size_t relayed = 0;
  std::optional<EventCursor> cursor;
  for (;;) {
    auto page = ingest_store_->unprocessed(1000, cursor);
    if (!page.ok()) return page.error();
    if (page->empty()) break;
    std::vector<OutgoingMessage> raw;
    for (const StoredEvent& e : *page) raw.push_back(raw_message(e.event));
    auto published = publisher_->publish(TopicFamily::kRaw, raw);
    if (!published.ok()) return published.error();
    relayed += raw.size();
    cursor = EventCursor{page->back().event.timestamp(), page->back().event.id()};
  }
  return relayed;
}

void EnvironmentPipeline::start() {
  StreamingConsumer::Options opts;
  opts.workers = o_.workers;
  // One message per pull: the keys of a pull then spread over the workers, whose commits the
  // store groups into one transaction.
  opts.max_messages = 1;
  merge_consumer_ = std::make_unique<StreamingConsumer>(
      *o_.broker, raw_subscription_,
      [this](const ReceivedMessage& m) { return merger_->on_raw(m); }, opts);
  retry_consumer_ = std::make_unique<StreamingConsumer>(
      *o_.broker, retry_subscription_,
      [this](const ReceivedMessage& m) { return merger_->on_retry(m); }, opts);
  merge_consumer_->start();
  retry_consumer_->start();
}

void EnvironmentPipeline::stop() {
  if (merge_consumer_) merge_consumer_->stop();
  if (retry_consumer_) retry_consumer_->stop();
  merge_consumer_.reset();
  retry_consumer_.reset();
}

Result<size_t> EnvironmentPipeline::drain(const std::string& subscription, bool raw) {
  size_t settled = 0;
  for (;;) {
    auto got = o_.broker->pull(subscription, 100);
    if (!got.ok()) return got.error();
    if (got->empty()) return settled;
    for (const ReceivedMessage& m : *got) {
      const ConsumerDecision d = raw ? merger_->on_raw(m) : merger_->on_retry(m);
      BACKBONE_TRY(settle(*o_.broker, subscription, m, d));
      ++settled;
    }
  }
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

Result<DlqEntry> EnvironmentPipeline::dlq_show(const EventId& id) {
  return show_dead_letter(*ingest_store_, id);
}

Result<void> EnvironmentPipeline::dlq_replay(const EventId& id) {
  auto entry = dlq_show(id);
  if (!entry.ok()) return entry.error();
  const Event& ev = entry->event.event;
  std::lock_guard lock(ingest_mu_);
  AuditDraft replayed{ev.id(), ev.record_key(), AuditAction::kReplayed, ev.fingerprint(),
                      std::string("{\"from\":\"dlq\"}")};
  auto a = ingest_store_->append_audit(std::span(&replayed, 1));
  if (!a.ok()) return a.error();
  OutgoingMessage m = raw_message(ev);
  auto published = publisher_->publish(TopicFamily::kRaw, std::span(&m, 1));
  if (!published.ok()) return published.error();
  return {};
}

Result<size_t> EnvironmentPipeline::dlq_replay_all() {
  auto all = dlq_list();
  if (!all.ok()) return all.error();
  // In the original order: history order, which is the order the events were sent in.
  std::sort(all->begin(), all->end(), [](const DlqEntry& a, const DlqEntry& b) {
    const Event& x = a.event.event;
    const Event& y = b.event.event;
    return std::make_pair(x.timestamp(), x.id()) < std::make_pair(y.timestamp(), y.id());
  });
  for (const DlqEntry& e : *all) BACKBONE_TRY(dlq_replay(e.event.event.id()));
  return all->size();
}

}  // namespace backbone::pipeline
