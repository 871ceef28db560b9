// SpreadBroker: the broker as this process's external consumers see it (the HTTP sync routes and
// the Pub/Sub front). Where several processes serve an environment and a subscription is split
// into buckets, each process serves only the buckets it owns (doc/scale_out.md); a consumer that
// reaches any one process must still get every bucket's messages, and its acks must count there.
// So, for such a subscription:
//
//  - a pull takes what this process holds, then asks each other member for the rest (with no
//    wait), over HTTP to the member's internal route (add_member_routes), signed with this
//    member's key (LeaseKeeper::key); when nobody holds anything and the caller waits, it waits
//    here in short steps, asking the others again after each;
//  - every ack id it hands out names the member that delivered it ("<member>~<broker's ack
//    id>"); an ack, a deadline change or a nack goes to that member (a member that is gone holds
//    nothing that counts: its deliveries are redelivered by the bucket's next owner).
//
// Every other call, and every call on a subscription served here whole, goes to the local broker
// as it is.
//
// Thread-safety: thread-safe (the local broker is, and each forward is a call of its own).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "backbone/forwarding_broker.h"

namespace backbone::server {

// The other members that serve parts of a split subscription, and how to reach them.
struct SpreadPeers {
  std::string env;                             // the environment whose cluster this is
  std::string self;                            // this member's id
  std::string key;                             // this member's key, to sign forwards
  std::map<std::string, std::string> address;  // the other live members: id -> HTTP address
};

class SpreadBroker final : public ForwardingBroker {
 public:
  // The peers of `subscription`, or nullopt when this process serves it whole.
  using PeersOf = std::function<std::optional<SpreadPeers>(std::string_view subscription)>;
  // `local` must outlive the SpreadBroker.
  SpreadBroker(Broker& local, PeersOf peers) : ForwardingBroker(local), peers_(std::move(peers)) {}

  Result<std::vector<ReceivedMessage>> pull(std::string_view subscription, size_t max,
                                            int64_t wait_us = 0) override;
  Result<size_t> ack(std::string_view subscription, std::span<const std::string> ack_ids) override;
  Result<void> nack(std::string_view subscription, std::span<const std::string> ack_ids,
                    std::optional<int64_t> delay_us = std::nullopt,
                    std::string_view reason = {}) override;
  Result<void> modify_ack_deadline(std::string_view subscription,
                                   std::span<const std::string> ack_ids,
                                   int64_t deadline_us) override;

 private:
  // Ack ids by the member that delivered them; this process's under "", unwrapped.
  std::map<std::string, std::vector<std::string>> by_member(std::span<const std::string> ids,
                                                            const SpreadPeers& peers) const;
  // Sends the deliveries of other members on to them: `verb` is "acknowledge",
  // "modifyAckDeadline" (with deadline_us) or "nack" (with its delay as deadline_us, or -1 for
  // the retry policy's backoff); returns how many counted.
  size_t settle_elsewhere(std::string_view subscription, const SpreadPeers& peers,
                          const std::map<std::string, std::vector<std::string>>& ids,
                          const char* verb, int64_t deadline_us) const;

  PeersOf peers_;
};

// The member calls, shared by the forwarding side above and the answering routes: the path of a
// member route (POST, a JSON body naming the subscription), and a pull's answer as CBOR
// (message data are bytes).
std::string member_route(std::string_view env, std::string_view verb);
std::string encode_deliveries(std::span<const ReceivedMessage> messages);
// kInvalidArgument for an answer that is not a well-formed list of deliveries.
Result<std::vector<ReceivedMessage>> decode_deliveries(std::string_view cbor);

inline constexpr const char* kMemberHeader = "X-Backbone-Member";

// One member call (POST member_route(peers.env, verb) at `address`, signed with this member's
// key): the answer's body, or nullopt when it did not answer 200 within its timeouts.
std::optional<std::string> call_member(const SpreadPeers& peers, const std::string& address,
                                       std::string_view verb, const nlohmann::json& body);

}  // namespace backbone::server
