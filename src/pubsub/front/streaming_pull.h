// One StreamingPull call of the Pub/Sub front. The first request names the subscription, the
// stream's ack deadline (10 to 600 s) and the flow control (max_outstanding_messages and
// max_outstanding_bytes; 0 is no limit). Then two threads share the stream:
//  - the call's thread pulls from the broker, as much as flow control allows, and writes the
//    messages, giving each the stream's ack deadline;
//  - a reader thread takes the acks and deadline changes of later requests (a new deadline of
//    0 is a nack) and frees their room in the flow control.
// The stream is in `registry` while it runs, so that unary Acknowledge and ModifyAckDeadline
// calls free its room too. A lease that expires frees it as well.
// A message that the stream delivered and that is neither acked nor nacked when the stream
// ends stays leased until its deadline (a client that reconnects acks it on its new stream).
// The call ends when the client half-closes, cancels, or the server shuts down.
//
// Thread-safety: one object per call.
#pragma once

#include "google/pubsub/v1/pubsub.grpc.pb.h"
#include "pubsub/front/front_access.h"
#include "pubsub/front/stream_registry.h"

namespace backbone::pubsub {

grpc::Status serve_streaming_pull(
    const FrontAccess& access, StreamRegistry& registry, grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<google::pubsub::v1::StreamingPullResponse,
                             google::pubsub::v1::StreamingPullRequest>* stream);

}  // namespace backbone::pubsub
