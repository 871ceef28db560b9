#include "server/spread_broker.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace backbone::server {
namespace {

constexpr char kMemberMark = '~';
// While nobody holds anything, a waiting pull waits here this long before asking the others again.
constexpr int64_t kWaitStepUs = 250'000;

std::string wrap(const std::string& member, const std::string& ack_id) {
  return member + kMemberMark + ack_id;
}

}  // namespace

std::optional<std::string> call_member(const SpreadPeers& peers, const std::string& address,
                                       std::string_view verb, const nlohmann::json& body) {
  httplib::Client c(address);
  c.set_connection_timeout(2);
  c.set_read_timeout(10);
  const httplib::Headers h = {{"Authorization", "Bearer " + peers.key},
                              {kMemberHeader, peers.self}};
  auto r = c.Post(member_route(peers.env, verb), h, body.dump(), "application/json");
  if (!r || r->status != 200) return std::nullopt;
  return r->body;
}

std::string member_route(std::string_view env, std::string_view verb) {
  return "/v1/envs/" + std::string(env) + "/cluster:" + std::string(verb);
}

std::string encode_deliveries(std::span<const ReceivedMessage> messages) {
  nlohmann::json out = nlohmann::json::array();
  for (const ReceivedMessage& m : messages) {
    out.push_back({{"ack_id", m.ack_id},
                   {"attempt", m.delivery_attempt},
                   {"id", m.message.id},
                   {"data", nlohmann::json::binary(std::vector<uint8_t>(m.message.data.begin(),
                                                                        m.message.data.end()))},
                   {"attributes", m.message.attributes},
                   {"ordering_key", m.message.ordering_key},
                   {"publish_us", m.message.publish_time.micros()}});
  }
  const std::vector<uint8_t> bytes = nlohmann::json::to_cbor(out);
  return std::string(bytes.begin(), bytes.end());
}

Result<std::vector<ReceivedMessage>> decode_deliveries(std::string_view cbor) {
  const auto j = nlohmann::json::from_cbor(cbor.begin(), cbor.end(), true, false);
  const auto bad = [](const std::string& why) {
    return make_error(Errc::kInvalidArgument, "a member's pull answer " + why);
  };
  if (j.is_discarded() || !j.is_array()) return bad("is not a CBOR list");
  std::vector<ReceivedMessage> out;
  for (const auto& m : j) {
    if (!m.is_object()) return bad("holds something other than a delivery");
    using Check = bool (nlohmann::json::*)() const noexcept;
    const std::pair<const char*, Check> fields[] = {
        {"ack_id", &nlohmann::json::is_string},
        {"attempt", &nlohmann::json::is_number_integer},
        {"id", &nlohmann::json::is_string},
        {"data", &nlohmann::json::is_binary},
        {"attributes", &nlohmann::json::is_object},
        {"ordering_key", &nlohmann::json::is_string},
        {"publish_us", &nlohmann::json::is_number_integer}};
    for (const auto& [name, check] : fields) {
      auto it = m.find(name);
      if (it == m.end() || !((*it).*check)()) {
        return bad(std::string("lacks a delivery's \"") + name + "\", or has one of another type");
      }
    }
    ReceivedMessage r;
    r.ack_id = m["ack_id"].get<std::string>();
    r.delivery_attempt = m["attempt"].get<int>();
    r.message.id = m["id"].get<std::string>();
    const auto& data = m["data"].get_binary();
    r.message.data.assign(data.begin(), data.end());
    for (const auto& [k, v] : m["attributes"].items()) {
      if (!v.is_string()) return bad("has an attribute that is not a string");
      r.message.attributes[k] = v.get<std::string>();
    }
    r.message.ordering_key = m["ordering_key"].get<std::string>();
    r.message.publish_time = Timestamp::from_micros(m["publish_us"].get<int64_t>());
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<ReceivedMessage>> SpreadBroker::pull(std::string_view subscription, size_t max,
                                                        int64_t wait_us) {
  const auto peers = peers_(subscription);
  if (!peers) return inner().pull(subscription, max, wait_us);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(wait_us);
  for (;;) {
    auto mine = inner().pull(subscription, max);
    if (!mine.ok()) return mine.error();
    std::vector<ReceivedMessage> out = std::move(*mine);
    for (ReceivedMessage& m : out) m.ack_id = wrap(peers->self, m.ack_id);
    for (const auto& [member, address] : peers->address) {
      if (out.size() >= max) break;
      const nlohmann::json ask = {{"subscription", subscription},
                                  {"max_messages", max - out.size()}};
      auto answer = call_member(*peers, address, "pull", ask);
      if (!answer) continue;
      auto theirs = decode_deliveries(*answer);
      if (!theirs.ok()) continue;  // an answer that cannot be read holds nothing that counts
      for (ReceivedMessage& m : *theirs) {
        if (out.size() >= max) break;  // the rest are redelivered when their deadline passes
        m.ack_id = wrap(member, m.ack_id);
        out.push_back(std::move(m));
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (!out.empty() || left <= 0) return out;
    // Nothing anywhere: wait here a step, for what this process gets first.
    auto waited = inner().pull(subscription, max, std::min(left, kWaitStepUs));
    if (!waited.ok()) return waited.error();
    if (!waited->empty()) {
      for (ReceivedMessage& m : *waited) m.ack_id = wrap(peers->self, m.ack_id);
      return std::move(*waited);
    }
    if (std::chrono::steady_clock::now() >= deadline) return out;
  }
}

std::map<std::string, std::vector<std::string>> SpreadBroker::by_member(
    std::span<const std::string> ids, const SpreadPeers& peers) const {
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& id : ids) {
    const size_t mark = id.find(kMemberMark);
    if (mark == std::string::npos) {
      out[""].push_back(id);  // handed out while this process served the subscription alone
    } else if (id.compare(0, mark, peers.self) == 0 && mark == peers.self.size()) {
      out[""].push_back(id.substr(mark + 1));
    } else {
      out[id.substr(0, mark)].push_back(id.substr(mark + 1));
    }
  }
  return out;
}

size_t SpreadBroker::settle_elsewhere(std::string_view subscription, const SpreadPeers& peers,
                                      const std::map<std::string, std::vector<std::string>>& ids,
                                      const char* verb, int64_t deadline_us) const {
  size_t counted = 0;
  for (const auto& [member, theirs] : ids) {
    if (member.empty()) continue;
    auto it = peers.address.find(member);
    if (it == peers.address.end()) continue;  // gone: its deliveries go to the next owner
    nlohmann::json ask = {{"subscription", subscription}, {"ack_ids", theirs}};
    if (deadline_us >= 0) ask["deadline_us"] = deadline_us;  // nack: its delay; else backoff
    auto answer = call_member(peers, it->second, verb, ask);
    if (!answer) continue;
    auto j = nlohmann::json::parse(*answer, nullptr, false);
    if (j.is_object() && j.contains("counted") && j["counted"].is_number_unsigned()) {
      counted += j["counted"].get<size_t>();
    }
  }
  return counted;
}

Result<size_t> SpreadBroker::ack(std::string_view subscription,
                                 std::span<const std::string> ack_ids) {
  const auto peers = peers_(subscription);
  if (!peers) return inner().ack(subscription, ack_ids);
  const auto ids = by_member(ack_ids, *peers);
  size_t counted = 0;
  if (auto it = ids.find(""); it != ids.end()) {
    auto r = inner().ack(subscription, it->second);
    if (!r.ok()) return r.error();
    counted += *r;
  }
  return counted + settle_elsewhere(subscription, *peers, ids, "acknowledge", -1);
}

Result<void> SpreadBroker::modify_ack_deadline(std::string_view subscription,
                                               std::span<const std::string> ack_ids,
                                               int64_t deadline_us) {
  const auto peers = peers_(subscription);
  if (!peers) return inner().modify_ack_deadline(subscription, ack_ids, deadline_us);
  BACKBONE_TRY(validate_delay(deadline_us, "ack_deadline"));
  const auto ids = by_member(ack_ids, *peers);
  if (auto it = ids.find(""); it != ids.end()) {
    BACKBONE_TRY(inner().modify_ack_deadline(subscription, it->second, deadline_us));
  }
  settle_elsewhere(subscription, *peers, ids, "modifyAckDeadline", deadline_us);
  return {};
}

Result<void> SpreadBroker::nack(std::string_view subscription, std::span<const std::string> ack_ids,
                                std::optional<int64_t> delay_us, std::string_view reason) {
  const auto peers = peers_(subscription);
  if (!peers) return inner().nack(subscription, ack_ids, delay_us, reason);
  const auto ids = by_member(ack_ids, *peers);
  if (auto it = ids.find(""); it != ids.end()) {
    BACKBONE_TRY(inner().nack(subscription, it->second, delay_us, reason));
  }
  settle_elsewhere(subscription, *peers, ids, "nack", delay_us.value_or(-1));
  return {};
}

}  // namespace backbone::server
