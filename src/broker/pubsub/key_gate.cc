#include "broker/pubsub/key_gate.h"

#include <algorithm>

namespace backbone::pubsub {
namespace {

constexpr std::string_view kGateAckPrefix = "backbone-gate:";
constexpr size_t kMaxServerAckIds = 8;  // per message: the newest redeliveries' ack ids

void add_server_ack_id(std::vector<std::string>& ids, std::string id) {
  if (std::find(ids.begin(), ids.end(), id) != ids.end()) return;
  if (ids.size() == kMaxServerAckIds) ids.erase(ids.begin());
  ids.push_back(std::move(id));
}

}  // namespace

KeyGate::KeyGate(Policy policy) : policy_(policy) {}

void KeyGate::admit(std::vector<ReceivedMessage> got, int64_t now,
                    std::vector<ReceivedMessage>& pass, std::vector<std::string>& ack_now) {
  for (ReceivedMessage& m : got) {
    if (m.message.ordering_key.empty()) {
      pass.push_back(std::move(m));
      continue;
    }
    if (settled_.contains(m.message.id)) {
      ack_now.push_back(std::move(m.ack_id));
      continue;
    }
    if (auto it = by_id_.find(m.message.id); it != by_id_.end()) {
      // A redelivery of a message in hand (its lease ran out, or another stream got it).
      Entry& e = *it->second;
      add_server_ack_id(e.server_ack_ids, std::move(m.ack_id));
      e.lease_until = now + policy_.lease_us;
      continue;
    }
    auto e = std::make_shared<Entry>();
    e->attempt = std::max(1, m.delivery_attempt);
    e->server_ack_ids.push_back(std::move(m.ack_id));
    e->lease_until = now + policy_.lease_us;
    e->delivery = std::move(m);
    e->delivery.ack_id.clear();
    const std::string key = e->delivery.message.ordering_key;
    Key& k = keys_[key];
    k.queue.push_back(e);
    by_id_[e->delivery.message.id] = e;
    if (k.queue.size() == 1) hold_front(key, *e, now);
  }
}

void KeyGate::hold_front(const std::string& key, Entry& e, int64_t not_before) {
  e.state = State::kHeld;
  e.not_before = not_before;
  due_.emplace(not_before, key);
}

std::vector<ReceivedMessage> KeyGate::take(size_t max, int64_t now) {
  std::vector<ReceivedMessage> out;
  while (out.size() < max && !due_.empty() && due_.begin()->first <= now) {
    const std::string key = due_.begin()->second;
    due_.erase(due_.begin());
    Entry& e = *keys_.at(key).queue.front();
    e.state = State::kOut;
    e.deadline = now + policy_.ack_deadline_us;
    e.delivery.ack_id = std::string(kGateAckPrefix) + std::to_string(next_ack_++);
    e.delivery.delivery_attempt = e.attempt;
    out_[e.delivery.ack_id] = e.delivery.message.id;
    out.push_back(e.delivery);
  }
  return out;
}

bool KeyGate::owns(const std::string& ack_id) const {
  return std::string_view(ack_id).starts_with(kGateAckPrefix);
}

KeyGate::Entry* KeyGate::current(const std::string& ack_id) {
  auto o = out_.find(ack_id);
  if (o == out_.end()) return nullptr;
  auto e = by_id_.find(o->second);
  if (e == by_id_.end() || e->second->state != State::kOut ||
      e->second->delivery.ack_id != ack_id) {
    out_.erase(o);
    return nullptr;
  }
  return e->second.get();
}

std::optional<std::vector<std::string>> KeyGate::ack(const std::string& ack_id) {
  Entry* e = current(ack_id);
  if (!e) return std::nullopt;
  std::vector<std::string> ids = e->server_ack_ids;
  settle(e->delivery.message.id);
  return ids;
}

std::optional<KeyGate::Doomed> KeyGate::fail(const std::string& ack_id,
                                             std::optional<int64_t> delay_us,
                                             std::string_view reason, int64_t now) {
  Entry* e = current(ack_id);
  if (!e) return std::nullopt;
  return fail_entry(*e, delay_us, reason, now);
}

std::optional<KeyGate::Doomed> KeyGate::fail_entry(Entry& e, std::optional<int64_t> delay_us,
                                                   std::string_view reason, int64_t now) {
  out_.erase(e.delivery.ack_id);
  if (policy_.max_attempts > 0 && e.attempt >= policy_.max_attempts) return doom_entry(e, reason);
  const int failed = e.attempt++;
  e.delivery.ack_id.clear();
  hold_front(e.delivery.message.ordering_key, e,
             now + (delay_us ? *delay_us : retry_backoff_us(policy_.retry, failed)));
  return std::nullopt;
}

bool KeyGate::extend(const std::string& ack_id, int64_t deadline_us, int64_t now) {
  Entry* e = current(ack_id);
  if (!e) return false;
  e->deadline = now + deadline_us;
  return true;
}

std::optional<KeyGate::Doomed> KeyGate::doom(const std::string& ack_id, std::string_view reason) {
  Entry* e = current(ack_id);
  if (!e) return std::nullopt;
  out_.erase(ack_id);
  return doom_entry(*e, reason);
}

KeyGate::Doomed KeyGate::doom_entry(Entry& e, std::string_view reason) {
  e.state = State::kDoomed;
  Doomed d{e.delivery, std::string(reason), e.server_ack_ids};
  d.delivery.delivery_attempt = e.attempt;
  e.delivery.ack_id.clear();
  return d;
}

void KeyGate::dead_lettered(const std::string& message_id) {
  auto it = by_id_.find(message_id);
  if (it == by_id_.end() || it->second->state != State::kDoomed) return;
  settle(message_id);
}

void KeyGate::retry_doomed(const std::string& message_id, int64_t now) {
  auto it = by_id_.find(message_id);
  if (it == by_id_.end() || it->second->state != State::kDoomed) return;
  Entry& e = *it->second;
  // Its last attempt fails again when it next comes out, and it is dead-lettered then.
  hold_front(e.delivery.message.ordering_key, e,
             now + retry_backoff_us(policy_.retry, std::max(1, e.attempt)));
}

void KeyGate::settle(std::string message_id) {
  auto it = by_id_.find(message_id);
  if (it == by_id_.end()) return;
  const std::string key = it->second->delivery.message.ordering_key;
  out_.erase(it->second->delivery.ack_id);
  by_id_.erase(it);
  settled_.insert(message_id);
  settled_order_.push_back(message_id);
  if (settled_order_.size() > kRememberSettled) {
    settled_.erase(settled_order_.front());
    settled_order_.pop_front();
  }
  auto k = keys_.find(key);
  if (k == keys_.end()) return;
  auto& q = k->second.queue;
  // The settled one is the front: a key has one message out (or doomed) at a time.
  std::erase_if(q, [&](const auto& e) { return e->delivery.message.id == message_id; });
  if (q.empty()) {
    keys_.erase(k);
    return;
  }
  hold_front(key, *q.front(), 0);  // its turn: due at once
}

KeyGate::Upkeep KeyGate::upkeep(int64_t now) {
  Upkeep u;
  std::vector<Entry*> expired;
  for (auto& [id, e] : by_id_) {
    if (e->state == State::kOut && e->deadline <= now) expired.push_back(e.get());
    if (e->lease_until - now < policy_.lease_us / 2) {
      u.extend.push_back(e->server_ack_ids.back());
      e->lease_until = now + policy_.lease_us;
    }
  }
  for (Entry* e : expired) {
    if (auto d = fail_entry(*e, std::nullopt, "ack deadline expired", now)) {
      u.doomed.push_back(std::move(*d));
    }
  }
  return u;
}

std::optional<int64_t> KeyGate::next_due() const {
  if (due_.empty()) return std::nullopt;
  return due_.begin()->first;
}

KeyGate::Counts KeyGate::counts() const {
  Counts c;
  for (const auto& [id, e] : by_id_) {
    if (e->state == State::kOut) {
      ++c.out;
    } else {
      ++c.held;
    }
  }
  return c;
}

bool KeyGate::full() const { return by_id_.size() >= policy_.max_held; }

}  // namespace backbone::pubsub
