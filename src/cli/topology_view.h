// How the CLI shows topology items and subscription policies, as text and as JSON. Shared by
// `provision` and `topology show`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backbone/broker.h"
#include "backbone/topology.h"

namespace backbone::cli {

// For example: ordered, ack 30s, retry 10s..600s, dead-letter TOPIC after 5, retention 7d
std::string policy_text(const SubscriptionConfig& c);
nlohmann::json subscription_json(const SubscriptionConfig& c);
nlohmann::json item_json(const ProvisionItem& item);
// For example: backlog 3, in flight 1, oldest unacked 7s, dead-lettered 0; "unknown" for what
// the broker cannot know, and this process's part where that is all it gives.
std::string backlog_text(const Result<SubscriptionStats>& stats);

}  // namespace backbone::cli
