// The `pubsub://` broker URL:
//
//   pubsub://PROJECT[?endpoint=HOST:PORT&token_env=VAR]
//
//  - PROJECT    the Google Cloud project whose topics and subscriptions the broker uses
//               ([a-z0-9-], 1 to 30 bytes);
//  - endpoint   a Pub/Sub server spoken to in plaintext: an emulator, or backbone's own Pub/Sub
//               front. Without it, PUBSUB_EMULATOR_HOST when set (plaintext, as Google's
//               clients do), else pubsub.googleapis.com:443 with TLS and Google's Application
//               Default Credentials;
//  - token_env  the environment variable that holds a bearer token to send on every call
//               (backbone's front wants one unless it serves anonymous calls).
//
// Thread-safety: plain values and functions.
#pragma once

#include <string>
#include <string_view>

#include "backbone/result.h"

namespace backbone::pubsub {

inline constexpr std::string_view kGoogleEndpoint = "pubsub.googleapis.com:443";

struct PubsubUrl {
  std::string project;
  std::string endpoint;  // host:port
  bool plaintext = false;
  std::string token;  // the bearer token read from token_env, or empty
};

// kInvalidArgument, naming what is wrong. Reads PUBSUB_EMULATOR_HOST and token_env's variable.
Result<PubsubUrl> parse_pubsub_url(std::string_view url);

}  // namespace backbone::pubsub
