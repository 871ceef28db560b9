#include "broker/delivery/subscription_state.h"

#include <algorithm>

namespace backbone::delivery {

SubscriptionState::SubscriptionState(SubscriptionConfig config, uint64_t start,
                                     uint64_t first_generation)
    : config_(std::move(config)), lwm_(start), cursor_(start), next_generation_(first_generation) {}

void SubscriptionState::restore(const RestoredState& r, const TopicIndex& topic, Timestamp now) {
  lwm_ = std::max(lwm_, r.lwm);
  uint64_t end = lwm_;
  for (uint64_t off : r.acked) end = std::max(end, off + 1);
  for (const auto& [off, a] : r.attempts) end = std::max(end, off + 1);
  cursor_ = std::max(lwm_, std::min(end, topic.end()));
  acked_.assign(cursor_ > lwm_ ? cursor_ - lwm_ : 0, 0);
  for (uint64_t off : r.acked) {
    if (off >= lwm_ && off < cursor_) acked_[off - lwm_] = 1;
  }
  for (uint64_t off = lwm_; off < cursor_; ++off) {
    if (acked_[off - lwm_]) continue;
    const uint64_t key = topic.at(off).key_hash;
    const auto it = r.attempts.find(off);
    const bool first_of_key = !ordered_key(key) || keys_[key].offsets.empty();
    if (ordered_key(key)) keys_[key].offsets.push_back(off);
    if (!first_of_key && it == r.attempts.end()) {
      ++blocked_count_;  // queued behind its key, with no history
      continue;
    }
    Touched t;
    t.key_hash = key;
    t.when = now;
    if (it != r.attempts.end()) {
      t.attempts = it->second.attempts;
      t.when = std::max(now, it->second.available_at);
      t.last_error = it->second.reason;
    }
    t.generation = next_generation_++;
    if (first_of_key) {
      t.phase = Phase::kWaiting;
      waiting_.push({t.when, off, t.generation});
      ++waiting_count_;
    } else {
      t.phase = Phase::kQueued;
      ++blocked_count_;
    }
    touched_.emplace(off, std::move(t));
  }
  while (!acked_.empty() && acked_.front()) {
    acked_.pop_front();
    ++lwm_;
  }
}

size_t SubscriptionState::key_window() const {
  return config_.key_delivery == KeyDelivery::kStreamed ? SIZE_MAX : 1;
}

void SubscriptionState::line_up(uint64_t key_hash, Timestamp now) {
  auto it = keys_.find(key_hash);
  if (it == keys_.end()) return;
  KeyLine& line = it->second;
  if (line.offsets.empty()) {
    keys_.erase(it);
    return;
  }
  if (line.out >= key_window() || line.out >= line.offsets.size()) return;
  const uint64_t next = line.offsets[line.out];
  auto [t, fresh] = touched_.try_emplace(next);
  if (!fresh && t->second.phase != Phase::kQueued) return;  // scheduled already
  Touched& n = t->second;
  n.key_hash = key_hash;
  n.when = fresh ? now : std::max(now, n.when);
  n.phase = Phase::kWaiting;
  n.generation = next_generation_++;
  waiting_.push({n.when, next, n.generation});
  ++waiting_count_;
  --blocked_count_;
}

void SubscriptionState::withdraw_after(uint64_t key_hash, uint64_t offset, Timestamp now) {
  auto it = keys_.find(key_hash);
  BACKBONE_ASSERT(it != keys_.end());
  KeyLine& line = it->second;
  const auto pos = std::find(line.offsets.begin(), line.offsets.end(), offset);
  BACKBONE_ASSERT(pos != line.offsets.end());
  const size_t at = static_cast<size_t>(pos - line.offsets.begin());
  BACKBONE_ASSERT(at < line.out);
  for (size_t i = at + 1; i <= line.out && i < line.offsets.size(); ++i) {
    auto t = touched_.find(line.offsets[i]);
    if (t == touched_.end()) continue;  // queued with no history
    Touched& w = t->second;
    if (w.phase == Phase::kInFlight) {
      --in_flight_;
      w.when = now;  // it did not fail: it comes again as soon as the failed one is through
    } else if (w.phase == Phase::kWaiting) {
      --waiting_count_;  // keeps its own backoff, if it had one
    } else {
      continue;
    }
    w.phase = Phase::kQueued;
    w.generation = next_generation_++;  // its ack id and heap entries go stale
    ++blocked_count_;
  }
  line.out = at;
}

bool SubscriptionState::retention_expired(uint64_t offset, const TopicIndex& topic,
                                          Timestamp now) const {
  return topic.at(offset).publish_time_us + config_.retention_us <= now.micros();
}

SubscriptionState::Touched* SubscriptionState::current(uint64_t offset, uint64_t generation) {
  auto it = touched_.find(offset);
  if (it == touched_.end() || it->second.phase != Phase::kInFlight ||
      it->second.generation != generation) {
    return nullptr;
  }
  return &it->second;
}

void SubscriptionState::settle(uint64_t offset, uint64_t key_hash, Timestamp now) {
  BACKBONE_ASSERT(offset >= lwm_ && offset < cursor_);
  acked_[offset - lwm_] = 1;
  if (ordered_key(key_hash)) {
    if (auto it = keys_.find(key_hash); it != keys_.end()) {
      KeyLine& line = it->second;
      const auto pos = std::find(line.offsets.begin(), line.offsets.end(), offset);
      if (pos != line.offsets.end()) {
        if (static_cast<size_t>(pos - line.offsets.begin()) < line.out) --line.out;
        line.offsets.erase(pos);
      }
      line_up(key_hash, now);
    }
  }
  while (!acked_.empty() && acked_.front()) {
    acked_.pop_front();
    ++lwm_;
  }
}

void SubscriptionState::deliver(uint64_t offset, uint64_t key_hash, Timestamp now,
                                std::vector<Delivery>& out, StateSink& sink) {
  Touched& t = touched_[offset];
  t.key_hash = key_hash;
  ++t.attempts;
  t.phase = Phase::kInFlight;
  t.when = now.plus_micros(config_.ack_deadline_us);
  t.generation = next_generation_++;
  deadlines_.push({t.when, offset, t.generation});
  ++in_flight_;
  sink.on_attempt(offset, t.attempts, now, {});
  out.push_back({offset, t.attempts, t.generation});
  if (ordered_key(key_hash)) {
    KeyLine& line = keys_[key_hash];
    BACKBONE_ASSERT(line.out < line.offsets.size() && line.offsets[line.out] == offset);
    ++line.out;
    line_up(key_hash, now);
  }
}

void SubscriptionState::fail(uint64_t offset, Touched& t, std::optional<int64_t> delay_us,
                             const std::string& reason, Timestamp now, StateSink& sink) {
  BACKBONE_ASSERT(t.phase == Phase::kInFlight);
  --in_flight_;
  t.last_error = reason;
  if (ordered_key(t.key_hash)) withdraw_after(t.key_hash, offset, now);
  if (config_.dead_letter && t.attempts >= config_.dead_letter->max_delivery_attempts) {
    to_dead_letter(offset, reason, now, sink);
    return;
  }
  t.phase = Phase::kWaiting;
  t.when = now.plus_micros(delay_us ? std::max<int64_t>(0, *delay_us)
                                    : retry_backoff_us(config_.retry, t.attempts));
  t.generation = next_generation_++;
  waiting_.push({t.when, offset, t.generation});
  ++waiting_count_;
  sink.on_attempt(offset, t.attempts, t.when, reason);
}

void SubscriptionState::to_dead_letter(uint64_t offset, const std::string& reason, Timestamp now,
                                       StateSink& sink) {
  auto it = touched_.find(offset);
  BACKBONE_ASSERT(it != touched_.end());
  const int attempts = it->second.attempts;
  const uint64_t key = it->second.key_hash;
  touched_.erase(it);
  ++dead_lettered_;
  sink.on_dead_letter(offset, attempts, reason);
  settle(offset, key, now);
}

void SubscriptionState::expire_deadlines(Timestamp now, const TopicIndex& /*topic*/,
                                         StateSink& sink) {
  while (!deadlines_.empty() && deadlines_.top().when <= now) {
    const Timed e = deadlines_.top();
    deadlines_.pop();
    auto it = touched_.find(e.offset);
    if (it == touched_.end() || it->second.phase != Phase::kInFlight ||
        it->second.generation != e.generation || it->second.when != e.when) {
      continue;  // acked, failed, or given a new deadline since
    }
    fail(e.offset, it->second, std::nullopt, "ack deadline exceeded", now, sink);
  }
}

std::vector<Delivery> SubscriptionState::take(size_t max, Timestamp now, const TopicIndex& topic,
                                              StateSink& sink) {
  expire_deadlines(now, topic, sink);
  std::vector<Delivery> out;
  // Redeliveries first, and ordered keys' next messages, oldest first.
  while (out.size() < max && !waiting_.empty() && waiting_.top().when <= now) {
    const Timed e = waiting_.top();
    waiting_.pop();
    auto it = touched_.find(e.offset);
    if (it == touched_.end() || it->second.phase != Phase::kWaiting ||
        it->second.generation != e.generation) {
      continue;
    }
    --waiting_count_;
    const uint64_t key = it->second.key_hash;
    if (retention_expired(e.offset, topic, now)) {
      touched_.erase(it);
      sink.on_acked(e.offset);
      settle(e.offset, key, now);
      continue;
    }
    deliver(e.offset, key, now, out, sink);
  }
  // Then fresh messages from the cursor. The scan is bounded so that a pull on an ordered
  // subscription whose keys are all busy does not walk a whole backlog at once.
  size_t budget = 4096 + 16 * max;
  while (out.size() < max && cursor_ < topic.end() && budget-- > 0) {
    const uint64_t off = cursor_++;
    acked_.push_back(0);
    const MsgRef& ref = topic.at(off);
    if (retention_expired(off, topic, now)) {
      sink.on_acked(off);
      settle(off, 0, now);
      continue;
    }
    if (ordered_key(ref.key_hash)) {
      KeyLine& line = keys_[ref.key_hash];
      line.offsets.push_back(off);
      if (line.offsets.size() - 1 != line.out || line.out >= key_window()) {
        ++blocked_count_;  // behind its key
        continue;
      }
    }
    deliver(off, ref.key_hash, now, out, sink);
  }
  return out;
}

bool SubscriptionState::has_deliverable(Timestamp now, const TopicIndex& topic) const {
  return cursor_ < topic.end() || (!waiting_.empty() && waiting_.top().when <= now) ||
         (!deadlines_.empty() && deadlines_.top().when <= now);
}

bool SubscriptionState::ack(uint64_t offset, uint64_t generation, const TopicIndex& /*topic*/,
                            StateSink& sink, Timestamp now) {
  Touched* t = current(offset, generation);
  if (!t) return false;
  const uint64_t key = t->key_hash;
  touched_.erase(offset);
  --in_flight_;
  sink.on_acked(offset);
  settle(offset, key, now);
  return true;
}

bool SubscriptionState::nack(uint64_t offset, uint64_t generation, std::optional<int64_t> delay_us,
                             const std::string& reason, Timestamp now, const TopicIndex& /*topic*/,
                             StateSink& sink) {
  Touched* t = current(offset, generation);
  if (!t) return false;
  fail(offset, *t, delay_us, reason.empty() ? "nacked" : reason, now, sink);
  return true;
}

bool SubscriptionState::modify_deadline(uint64_t offset, uint64_t generation, int64_t deadline_us,
                                        Timestamp now, const TopicIndex& topic, StateSink& sink) {
  Touched* t = current(offset, generation);
  if (!t) return false;
  if (deadline_us <= 0)
    return nack(offset, generation, std::nullopt, "ack deadline set to 0", now, topic, sink);
  t->when = now.plus_micros(deadline_us);
  deadlines_.push({t->when, offset, generation});
  return true;
}

bool SubscriptionState::dead_letter(uint64_t offset, uint64_t generation, const std::string& reason,
                                    Timestamp now, const TopicIndex& /*topic*/, StateSink& sink) {
  Touched* t = current(offset, generation);
  if (!t) return false;
  --in_flight_;
  t->last_error = reason;
  to_dead_letter(offset, reason, now, sink);
  return true;
}

SubscriptionStats SubscriptionState::stats(Timestamp now, const TopicIndex& topic) {
  SubscriptionStats s = SubscriptionStats::zero();
  s.undelivered =
      (topic.end() > cursor_ ? topic.end() - cursor_ : 0) + waiting_count_ + blocked_count_;
  s.in_flight = in_flight_;
  s.dead_lettered = dead_lettered_;
  if (lwm_ < topic.end() && lwm_ >= topic.begin()) {
    s.oldest_unacked_age_us = std::max<int64_t>(0, now.micros() - topic.at(lwm_).publish_time_us);
  }
  return s;
}

std::vector<uint64_t> SubscriptionState::acked_above_lwm() const {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < acked_.size(); ++i) {
    if (acked_[i]) out.push_back(lwm_ + i);
  }
  return out;
}

RestoredState SubscriptionState::snapshot() const {
  RestoredState r;
  r.lwm = lwm_;
  r.acked = acked_above_lwm();
  for (const auto& [off, t] : touched_) {
    if (t.attempts == 0) continue;
    r.attempts[off] = {t.attempts, t.phase != Phase::kInFlight ? t.when : Timestamp(),
                       t.last_error};
  }
  return r;
}

void SubscriptionState::reset(const RestoredState& to, const TopicIndex& topic, Timestamp now) {
  BACKBONE_ASSERT(to.lwm >= topic.begin() && to.lwm <= topic.end());
  detach(to.lwm);
  RestoredState acks = to;
  acks.attempts.clear();
  // Offsets below `to.lwm` are acked; a snapshot's acks at or past the topic's end are moot.
  std::erase_if(acks.acked, [&](uint64_t off) { return off < to.lwm || off >= topic.end(); });
  // restore() takes the cursor to the last of these; the rest come fresh from there.
  restore(acks, topic, now);
}

void SubscriptionState::detach(uint64_t topic_end) {
  acked_.clear();
  touched_.clear();
  keys_.clear();
  waiting_ = MinHeap();
  deadlines_ = MinHeap();
  in_flight_ = waiting_count_ = blocked_count_ = 0;
  lwm_ = cursor_ = topic_end;
}

}  // namespace backbone::delivery
