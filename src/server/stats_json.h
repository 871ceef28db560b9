// A subscription's figures as JSON, in the HTTP topology answer and `backbone topology show
// --json`: {"undelivered", "in_flight", "oldest_unacked_age_seconds", "dead_lettered"}, each null
// when the broker cannot know it, and "unknown" listing the names of those; "client" (in_flight,
// held, dead_lettered) with this process's part, where the broker gives only that (pubsub://);
// "error" when the broker did not answer.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "backbone/broker.h"

namespace backbone::server {

nlohmann::json backlog_json(const Result<SubscriptionStats>& stats);

}  // namespace backbone::server
