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
    if (ordered_key(key)) {
      if (key_head_.count(key)) {
        blocked_[key].push_back(off);
        ++blocked_count_;
        continue;
      }
      key_head_[key] = off;
    }
    Touched t;
    t.key_hash = key;
    t.phase = Phase::kWaiting;
    t.when = now;
    if (auto it = r.attempts.find(off); it != r.attempts.end()) {
      t.attempts = it->second.attempts;
      t.when = std::max(now, it->second.available_at);
      t.last_error = it->second.reason;
    }
    t.generation = next_generation_++;
    waiting_.push({t.when, off, t.generation});
    ++waiting_count_;
    touched_.emplace(off, std::move(t));
  }
  while (!acked_.empty() && acked_.front()) {
    acked_.pop_front();
    ++lwm_;
  }
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
    auto head = key_head_.find(key_hash);
    if (head != key_head_.end() && head->second == offset) {
      auto q = blocked_.find(key_hash);
      if (q != blocked_.end() && !q->second.empty()) {
        const uint64_t next = q->second.front();
        q->second.pop_front();
        if (q->second.empty()) blocked_.erase(q);
        --blocked_count_;
        head->second = next;
        Touched t;
        t.key_hash = key_hash;
        t.phase = Phase::kWaiting;
        t.when = now;
        t.generation = next_generation_++;
        waiting_.push({now, next, t.generation});
        ++waiting_count_;
        touched_[next] = std::move(t);
      } else {
        key_head_.erase(head);
      }
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
}

void SubscriptionState::fail(uint64_t offset, Touched& t, std::optional<int64_t> delay_us,
                             const std::string& reason, Timestamp now, StateSink& sink) {
  BACKBONE_ASSERT(t.phase == Phase::kInFlight);
  --in_flight_;
  t.last_error = reason;
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
      if (key_head_.count(ref.key_hash)) {
        blocked_[ref.key_hash].push_back(off);
        ++blocked_count_;
        continue;
      }
      key_head_[ref.key_hash] = off;
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
    r.attempts[off] = {t.attempts, t.phase == Phase::kWaiting ? t.when : Timestamp(), t.last_error};
  }
  return r;
}

void SubscriptionState::detach(uint64_t topic_end) {
  acked_.clear();
  touched_.clear();
  key_head_.clear();
  blocked_.clear();
  waiting_ = MinHeap();
  deadlines_ = MinHeap();
  in_flight_ = waiting_count_ = blocked_count_ = 0;
  lwm_ = cursor_ = topic_end;
}

}  // namespace backbone::delivery
