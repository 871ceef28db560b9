#include "pipeline/merger.h"

#include <algorithm>
#include <utility>

#include "backbone/log.h"
#include "core/json_internal.h"
#include "pipeline/messages.h"

namespace backbone::pipeline {
namespace {

bool transient(Errc code) { return code == Errc::kUnavailable || code == Errc::kConflict; }

// Whether a `replayed` entry sends its event back accepted (dlq resolve --accept).
bool is_accept(const AuditEntry& a) {
  if (a.action != AuditAction::kReplayed || !a.detail) return false;
  auto d = nlohmann::json::parse(*a.detail, nullptr, false);
  return d.is_object() && d.value("resolution", "") == "accept";
}

AuditDraft draft(const Event& e, AuditAction action, std::string detail) {
  return AuditDraft{e.id(), e.record_key(), action, e.fingerprint(), std::move(detail)};
}

// A message that names no stored event, forwarded to the dead-letter topic as it came.
OutgoingMessage poison_message(const Message& m, const std::string& reason) {
  OutgoingMessage poison{m.data, m.attributes, m.ordering_key};
  poison.attributes[kAttrStage] = "merge";
  poison.attributes[kAttrReason] = reason.substr(0, kMaxAttributeValueBytes);
  if (poison.data.empty() && poison.attributes.empty()) poison.data = "(empty)";
  return poison;
}

std::vector<std::string> keys_of(std::span<const ReceivedMessage> batch) {
  std::vector<std::string> keys;
  keys.reserve(batch.size());
  for (const ReceivedMessage& m : batch) keys.push_back(m.message.ordering_key);
  return keys;
}

}  // namespace

std::vector<Merger::Item> Merger::merge_batch(Stage stage, std::span<const ReceivedMessage> batch) {
  std::vector<Item> items(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    items[i].delivery = &batch[i];
    items[i].key = batch[i].message.ordering_key;
    auto id = message_event_id(batch[i].message);
    if (id.ok()) {
      items[i].id = *id;
    } else {
      items[i].out.kind = Outcome::Kind::kDeadLettered;
      items[i].out.reason = "poison: " + id.error().message;
    }
  }
  merge_items(stage, items);
  return items;
}

void Merger::merge_items(Stage stage, std::vector<Item>& items) {
  // A commit refused because another process changed the record first (a shared
  // subscription) is decided again on what it did, a few times, before it counts as failed.
  constexpr int kMaxRaces = 3;
  std::vector<bool> taken(items.size(), false);
  std::unordered_set<std::string> failed;  // records with a transient failure in this call
  for (size_t left = items.size(); left > 0;) {
    std::vector<Item*> round;
    std::unordered_set<std::string> in_round;
    for (size_t i = 0; i < items.size(); ++i) {
      if (taken[i] || !in_round.insert(items[i].key).second) continue;
      taken[i] = true;
      --left;
      if (!items[i].id) continue;  // poison: decided already
      if (failed.count(items[i].key)) {
        items[i].out.kind = Outcome::Kind::kTransient;
        items[i].out.reason = "waits behind an earlier event of its record that failed";
        continue;
      }
      round.push_back(&items[i]);
    }
    merge_round(stage, round);
    for (Item* item : round) {
      if (item->out.kind != Outcome::Kind::kTransient) continue;
      if (std::exchange(item->lost_race, false) && item->races <= kMaxRaces) {
        item->out = Outcome{};
        taken[static_cast<size_t>(item - items.data())] = false;
        ++left;
        continue;
      }
      failed.insert(item->key);
    }
  }
}

Merger::Plan Merger::plan(Stage stage, Item& item) {
  Plan p;
  p.item = &item;
  Outcome& out = item.out;
  auto fail = [&](const Error& e) {
    out.kind = Outcome::Kind::kTransient;
    out.reason = e.describe();
    return p;
  };
  auto stored = d_.store->get(*item.id);
  if (!stored.ok()) {
    if (stored.code() == Errc::kNotFound || stored.code() == Errc::kDataLoss) {
      out.kind = Outcome::Kind::kDeadLettered;
      out.reason = "poison: " + stored.error().message;
      return p;
    }
    return fail(stored.error());
  }
  out.event = stored->event;
  const Event& ev = stored->event;
  bool accepted = false;  // sent back by `dlq resolve --accept`
  if (stored->processed) {
    auto terminal = terminal_entry(ev.id());
    if (!terminal.ok()) return fail(terminal.error());
    // Done already (a duplicate delivery, or one after a crash): publish its outcome again
    // unless this Merger did.
    if (*terminal && (*terminal)->action != AuditAction::kReplayed) {
      out = reemit(ev, **terminal, stage);
      return p;
    }
    if (!*terminal) return p;
    accepted = is_accept(**terminal);
  }
  const bool replay = stored->processed;

  auto record = d_.store->get_record(ev.record_key());
  if (!record.ok()) return fail(record.error());
  RecordState current;
  if (*record) current = {(*record)->version, (*record)->state, (*record)->field_versions};
  MergeSettings settings = d_.settings;
  settings.accept = accepted;
  auto decision = decide_merge(ev, current, settings,
                               [&](uint64_t v) { return origin_of(ev.record_key(), v); });
  if (!decision.ok()) {
    if (transient(decision.code())) return fail(decision.error());
    out.kind = Outcome::Kind::kDeadLettered;
    out.reason = decision.error().message;
    plan_dead_letter(p, ev, stage, "invariant broken: " + decision.error().message, {}, replay,
                     current.version);
    return p;
  }
  const MergeDecision& d = *decision;
  if (!d.conflicting_fields.empty() && log::enabled(log::Level::kDebug)) {
    std::string fields;
    for (const std::string& f : d.conflicting_fields) fields += (fields.empty() ? "" : ",") + f;
    log_decision(
        "merge.conflict", ev,
        {{"fields", fields},
         {"resolution",
          accepted ? "accept" : conflict_policy_name(settings.policy_for(ev.record_type()))}});
  }
  if (d.kind == MergeDecision::Kind::kGap) {
    out.kind = Outcome::Kind::kGap;
    out.reason = "gap: base_version " + std::to_string(ev.base_version()) + ", record at " +
                 std::to_string(current.version);
    // A delivery of the merge stage is parked by a commit of the round, fenced like a merge
    // (the retry stage's copy was parked when it was sent to the error topic).
    if (stage == Stage::kRaw && item.delivery) {
      MergeCommit c;
      c.event_id = ev.id();
      c.record = ev.record_key();
      c.expected_version = current.version;
      c.replay = replay;
      c.park = true;
      c.audit.push_back(retry_entry(ev, "gap", out.reason, 0));
      p.commit = std::move(c);
    }
    return p;
  }
  if (d.kind == MergeDecision::Kind::kRejected) {
    out.kind = Outcome::Kind::kDeadLettered;
    out.reason = "conflict: fields changed since base_version " +
                 std::to_string(ev.base_version()) + " (policy reject)";
    plan_dead_letter(p, ev, stage, out.reason, {draft(ev, AuditAction::kConflict, d.detail)},
                     replay, current.version);
    return p;
  }
  const bool advances = d.new_version(current.version);
  if (advances) {
    // The previous version's merged message must be out before this one (after a crash it may
    // not be).
    if (auto r = ensure_published(ev.record_key(), current.version); !r.ok()) {
      return fail(r.error());
    }
    p.merged = merged_message(ev, d.next.version, merge_kind_name(d.kind), d.effective_changes);
    p.next_version = d.next.version;
  }
  MergeCommit c;
  c.event_id = ev.id();
  c.record = ev.record_key();
  c.expected_version = current.version;
  c.replay = replay;
  if (advances) {
    c.next = StoredRecord{ev.record_key(), d.next.version, d.next.state, d.next.field_versions,
                          d_.clock->now()};
  }
  switch (d.kind) {
    case MergeDecision::Kind::kFastForward:
      c.audit.push_back(draft(ev, AuditAction::kMerged, d.detail));
      break;
    case MergeDecision::Kind::kRebased:
      c.audit.push_back(draft(ev, AuditAction::kRebased, d.detail));
      break;
    case MergeDecision::Kind::kAccepted:
      c.audit.push_back(draft(ev, AuditAction::kMerged, d.detail));
      break;
    default:  // resolved by policy
      c.audit.push_back(draft(ev, AuditAction::kConflict, d.detail));
      if (advances) c.audit.push_back(draft(ev, AuditAction::kMerged, d.detail));
      break;
  }
  p.commit = std::move(c);
  p.counter_kind = merge_kind_name(d.kind);
  return p;
}

void Merger::merge_round(Stage stage, std::span<Item* const> round) {
  std::vector<Plan> plans;
  plans.reserve(round.size());
  for (Item* item : round) plans.push_back(plan(stage, *item));

  auto transient_failure = [this](Plan& p, const Error& e) {
    p.item->out.kind = e.code == Errc::kFenced ? Outcome::Kind::kFenced : Outcome::Kind::kTransient;
    p.item->out.reason = e.describe();
    p.merged.reset();
    p.dlq.reset();
    if (p.item->out.event) log_decision("merge.retry", *p.item->out.event, {{"why", e.describe()}});
  };

  std::vector<MergeCommit> commits;
  std::vector<Plan*> committing;
  for (Plan& p : plans) {
    if (!p.commit) continue;
    if (auto fenced = set_fence(*p.commit); !fenced.ok()) {
      transient_failure(p, fenced.error());
      continue;
    }
    commits.push_back(std::move(*p.commit));
    committing.push_back(&p);
  }
  if (!commits.empty()) {
    auto results = d_.store->commit_merges(commits);
    for (size_t i = 0; i < committing.size(); ++i) {
      Plan& p = *committing[i];
      if (!results[i].ok()) {
        if (results[i].code() == Errc::kConflict) {
          p.item->lost_race = true;
          ++p.item->races;
        }
        transient_failure(p, results[i].error());
      } else if (p.dead_letter) {
        count("backbone_dead_lettered_events_total", "Events dead-lettered");
        note_decided();
        log_decision("merge.dead_letter", *p.item->out.event, {{"why", p.item->out.reason}});
      } else if (p.item->out.kind != Outcome::Kind::kGap) {  // a gap's commit parks it
        count("backbone_merged_events_total", "Events merged, by how", {{"kind", p.counter_kind}});
        if (!p.merged) published_.add(p.item->out.event->id());
        log_decision(
            "merge.decided", *p.item->out.event,
            {{"kind", p.counter_kind ? p.counter_kind : "none"}, {"version", p.next_version}});
      } else {
        log_decision("merge.parked", *p.item->out.event, {{"why", p.item->out.reason}});
      }
    }
  }

  // The outcomes, one publish per topic; a failed publish leaves the events committed, and
  // their redelivery publishes them again.
  for (auto [family, field] :
       {std::pair{TopicFamily::kMerged, &Plan::merged}, std::pair{TopicFamily::kDlq, &Plan::dlq}}) {
    std::vector<OutgoingMessage> out;
    std::vector<Plan*> sent;
    for (Plan& p : plans) {
      if (!(p.*field)) continue;
      out.push_back(std::move(*(p.*field)));
      sent.push_back(&p);
    }
    if (out.empty()) continue;
    auto published = d_.publisher->publish(family, out);
    for (Plan* p : sent) {
      if (!published.ok()) {
        transient_failure(*p, published.error());
        continue;
      }
      const Event& ev = *p->item->out.event;
      published_.add(ev.id());
      if (family == TopicFamily::kMerged) note_published(ev.record_key(), p->next_version);
    }
  }
}

std::optional<EventId> Merger::next_parked(const std::string& key, const RecordKey& record) {
  auto rec = d_.store->get_record(record);
  if (!rec.ok()) return std::nullopt;
  const uint64_t version = *rec ? (*rec)->version : 0;
  if (auto mine = take_parked(key, version)) return mine;
  if (!shared_) return std::nullopt;
  return parked_in_store(record, version);
}

std::optional<EventId> Merger::parked_in_store(const RecordKey& record, uint64_t version) {
  // Among the record's newest events: a parked event waits for a version made around its own
  // time. One parked behind more of its record's later events than this is left to its retry
  // copy, after a backoff. The read is bounded however long the record's history.
  constexpr size_t kWindow = 64;
  auto pending = d_.store->unprocessed_based_on(record, version, kWindow);
  if (!pending.ok()) return std::nullopt;
  for (const StoredEvent& e : *pending) {
    // Only a parked one: an event still on its way in the raw topic keeps its place there.
    auto entries = d_.store->audit_for_event(e.event.id());
    if (!entries.ok()) return std::nullopt;
    for (const AuditEntry& a : *entries) {
      if (a.action == AuditAction::kRetryScheduled) return e.event.id();
    }
  }
  return std::nullopt;
}

Result<size_t> Merger::recover_parked() {
  if (d_.fence) return 0;  // read per bucket, as this process works on it (recover_buckets)
  return load_parked(std::nullopt);
}

bool Merger::in_buckets(const std::string& key, const std::map<uint32_t, uint64_t>& buckets) const {
  auto f = d_.fence(key);
  if (!f.ok()) return false;
  auto it = buckets.find(f->bucket);
  return it != buckets.end() && it->second == f->epoch;
}

Result<void> Merger::recover_buckets(std::span<const ReceivedMessage> batch) {
  if (!d_.fence) return {};
  auto due = [&] {
    std::map<uint32_t, uint64_t> out;
    std::lock_guard lk(bookkeeping_mu_);
    for (const ReceivedMessage& m : batch) {
      auto f = d_.fence(m.message.ordering_key);
      if (!f.ok()) continue;  // not this process's: its commits are fenced off anyway
      auto it = recovered_.find(f->bucket);
      if (it == recovered_.end() || it->second != f->epoch) out[f->bucket] = f->epoch;
    }
    return out;
  };
  if (due().empty()) return {};
  std::lock_guard one(recover_mu_);
  const std::map<uint32_t, uint64_t> buckets = due();  // another worker may have read them
  if (buckets.empty()) return {};
  auto loaded = load_parked(buckets);
  if (!loaded.ok()) return loaded.error();
  return {};
}

Result<size_t> Merger::load_parked(const std::optional<std::map<uint32_t, uint64_t>>& buckets) {
  constexpr size_t kPage = 1000;
  auto wanted = [&](const std::string& key) { return !buckets || in_buckets(key, *buckets); };
  std::map<std::string, Event> records;  // ordering key -> one of its parked events
  std::vector<std::pair<std::string, Event>> parked;
  std::optional<EventCursor> after;
  for (;;) {
    auto page = d_.store->unprocessed_retrying(kPage, after);
    if (!page.ok()) return page.error();
    for (const StoredEvent& e : *page) {
      std::string key = OrderingKey(e.event.record_key()).str();
      if (!wanted(key)) continue;
      records.insert_or_assign(key, e.event);
      parked.emplace_back(std::move(key), e.event);
    }
    if (page->size() < kPage) break;
    after = EventCursor{page->back().event.timestamp(), page->back().event.id()};
  }
  {
    std::lock_guard lk(bookkeeping_mu_);
    if (buckets) {
      // What this process kept of the buckets from an earlier lease may have been merged by
      // their owners since: the store's word replaces it. From now on, commits for them go.
      std::erase_if(parked_, [&](const auto& entry) { return wanted(entry.first); });
      for (const auto& [bucket, epoch] : *buckets) recovered_[bucket] = epoch;
    }
    for (const auto& [key, event] : parked) parked_[key][event.base_version()] = event.id();
  }
  // As after a merge of each record: what fits its version now is merged.
  std::vector<Item> kicks;
  std::vector<std::string> keys;
  for (auto& [key, event] : records) {
    Item item;
    item.key = key;
    item.id = event.id();
    item.out.kind = Outcome::Kind::kDone;
    item.out.event = event;
    kicks.push_back(std::move(item));
    keys.push_back(key);
  }
  KeyLocks::Guard hold(keys_, std::move(keys));
  return apply_parked(kicks).size();
}

std::unordered_set<std::string> Merger::apply_parked(std::span<const Item> items) {
  // Most records have nothing parked and skip the reads. A restart loses the parked set, but
  // recover_parked() and the retry copies park every parked event again.
  std::unordered_set<std::string> applied;
  std::vector<std::pair<std::string, RecordKey>> records;
  std::unordered_set<std::string> listed;
  for (const Item& done : items) {
    if (!done.out.event) continue;
    const bool merged = done.out.kind == Outcome::Kind::kDone;
    // Parked just now: the missing version may have been merged by another process between
    // this one's read and its retry_scheduled entry, which that process then did not see.
    const bool parked = shared_ && done.out.kind == Outcome::Kind::kGap;
    if (!((merged && (shared_ || maybe_parked(done.key))) || parked)) continue;
    if (!listed.insert(done.key).second) continue;
    records.emplace_back(done.key, done.out.event->record_key());
  }
  // In rounds: each takes the next parked event of every record that has one fitting now.
  for (int guard = 0; guard < 10'000 && !records.empty(); ++guard) {
    std::vector<Item> parked;
    std::vector<std::pair<std::string, RecordKey>> next_records;
    for (auto& [key, record] : records) {
      auto next = next_parked(key, record);
      if (!next) continue;
      Item item;
      item.key = key;
      item.id = *next;
      parked.push_back(std::move(item));
      next_records.emplace_back(key, record);
    }
    if (parked.empty()) break;
    merge_items(Stage::kRaw, parked);
    records.clear();
    for (size_t i = 0; i < parked.size(); ++i) {
      // One that did not merge is left to its retry copy.
      if (parked[i].out.kind != Outcome::Kind::kDone) continue;
      applied.insert(parked[i].id->str());
      records.push_back(next_records[i]);
    }
  }
  return applied;
}

std::vector<ConsumerDecision> Merger::on_raw(std::span<const ReceivedMessage> batch) {
  // On failure the buckets' commits are refused (set_fence), and their deliveries come back.
  (void)recover_buckets(batch);
  KeyLocks::Guard hold(keys_, keys_of(batch));
  std::vector<Item> items = merge_batch(Stage::kRaw, batch);
  std::vector<ConsumerDecision> decisions(items.size(), ConsumerDecision::ack());
  std::vector<AuditDraft> retries;
  std::vector<OutgoingMessage> errors, poison;
  std::vector<size_t> parked, forwarded;
  Histogram* latency =
      d_.metrics
          ? &d_.metrics->histogram("backbone_ingest_to_merged_seconds",
                                   "From the raw publish to the merge commit", {{"env", d_.env}})
          : nullptr;
  const int64_t now = d_.clock->now().micros();
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    const Outcome& o = item.out;
    const ReceivedMessage& m = *item.delivery;
    switch (o.kind) {
      case Outcome::Kind::kDone:
        if (latency) {
          latency->observe(static_cast<double>(now - m.message.publish_time.micros()) / kSecond);
        }
        break;
      case Outcome::Kind::kDeadLettered:
        if (!o.event) {  // no stored event: forward the message itself
          poison.push_back(poison_message(m.message, o.reason));
          forwarded.push_back(i);
        }
        break;
      case Outcome::Kind::kGap:
        // Parked (its retry_scheduled entry committed with the round): the record's later events
        // pass it.
        note_parked(item.key, *o.event);
        errors.push_back(error_message(*o.event, "gap", o.reason));
        parked.push_back(i);
        break;
      case Outcome::Kind::kFenced:
        decisions[i] = fenced_decision(make_error(Errc::kFenced, o.reason));
        break;
      case Outcome::Kind::kTransient:
        if (m.delivery_attempt == 1 && o.event) {
          retries.push_back(retry_entry(*o.event, "transient", o.reason, 1));
          errors.push_back(error_message(*o.event, "transient", o.reason));
        }
        // Keep the record's key busy: its later events wait behind this one, in order.
        decisions[i] =
            ConsumerDecision::nack(o.reason, retry_backoff_us(d_.retry_policy, m.delivery_attempt));
        break;
    }
  }
  // Best effort: the store may be what failed.
  if (!retries.empty()) (void)d_.store->append_audit(retries);
  for (auto [family, messages, which] : {std::tuple{TopicFamily::kError, &errors, &parked},
                                         std::tuple{TopicFamily::kDlq, &poison, &forwarded}}) {
    if (messages->empty()) continue;
    auto r = d_.publisher->publish(family, *messages);
    if (r.ok()) continue;
    for (size_t i : *which) {
      decisions[i] = ConsumerDecision::nack(
          r.error().describe(), retry_backoff_us(d_.retry_policy, batch[i].delivery_attempt));
    }
  }
  apply_parked(items);
  return decisions;
}

std::vector<ConsumerDecision> Merger::on_retry(std::span<const ReceivedMessage> batch) {
  (void)recover_buckets(batch);
  KeyLocks::Guard hold(keys_, keys_of(batch));
  std::vector<Item> items = merge_batch(Stage::kRetry, batch);
  std::vector<ConsumerDecision> decisions(items.size(), ConsumerDecision::ack());
  std::vector<AuditDraft> retries;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    const Outcome& o = item.out;
    const ReceivedMessage& m = *item.delivery;
    switch (o.kind) {
      case Outcome::Kind::kDone:
        break;
      case Outcome::Kind::kDeadLettered:
        if (!o.emit) break;
        if (o.event) published_.add(o.event->id());
        decisions[i] = ConsumerDecision::dead_letter(o.reason);
        break;
      case Outcome::Kind::kFenced:
        decisions[i] = fenced_decision(make_error(Errc::kFenced, o.reason));
        break;
      case Outcome::Kind::kGap:
      case Outcome::Kind::kTransient: {
        const bool gap = o.kind == Outcome::Kind::kGap;
        if (gap && o.event) note_parked(item.key, *o.event);
        if (m.delivery_attempt < d_.max_attempts) {
          if (o.event)
            retries.push_back(
                retry_entry(*o.event, gap ? "gap" : "transient", o.reason, m.delivery_attempt));
          decisions[i] = ConsumerDecision::nack(o.reason);
          break;
        }
        // The last attempt: dead-letter it. When the store is down, the commit fails, and the
        // broker's dead letter still carries the event.
        if (o.event) {
          auto record = d_.store->get_record(o.event->record_key());
          const uint64_t version = record.ok() && *record ? (*record)->version : 0;
          Plan p;
          plan_dead_letter(
              p, *o.event, Stage::kRetry,
              o.reason + " (after " + std::to_string(m.delivery_attempt) + " attempts)", {}, false,
              version);
          if (auto fenced = set_fence(*p.commit); !fenced.ok()) {
            decisions[i] = fenced_decision(fenced.error());
            break;
          }
          if (d_.store->commit_merge(*p.commit).ok()) {
            count("backbone_dead_lettered_events_total", "Events dead-lettered");
            note_decided();
          }
          published_.add(o.event->id());
        }
        decisions[i] = ConsumerDecision::dead_letter(o.reason);
        break;
      }
    }
  }
  if (!retries.empty()) (void)d_.store->append_audit(retries);  // best effort
  const auto applied = apply_parked(items);
  for (size_t i = 0; i < items.size(); ++i) {
    // Merged after all, once its retry_scheduled entry was written: nothing is left to retry.
    if (items[i].out.kind == Outcome::Kind::kGap && items[i].id &&
        applied.contains(items[i].id->str())) {
      decisions[i] = ConsumerDecision::ack();
    }
  }
  return decisions;
}

Result<void> Merger::set_fence(MergeCommit& commit) {
  if (!d_.fence) return {};
  auto f = d_.fence(OrderingKey(commit.record).str());
  if (!f.ok()) return f.error();
  {
    std::lock_guard lk(bookkeeping_mu_);
    auto it = recovered_.find(f->bucket);
    if (it == recovered_.end() || it->second != f->epoch) {
      return make_error(Errc::kFenced, "the parked events of bucket " + std::to_string(f->bucket) +
                                           " at epoch " + std::to_string(f->epoch) +
                                           " are not read yet");
    }
  }
  commit.fence = *f;
  return {};
}

ConsumerDecision Merger::fenced_decision(const Error& e) {
  // Never an ack: until this process lets the bucket go, an ack could still land in its
  // journal, and the event would be lost. A nack leaves it to the bucket's owner.
  return ConsumerDecision::nack(e.describe(), kFencedRedelivery);
}

}  // namespace backbone::pipeline
