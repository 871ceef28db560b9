// Prometheus metrics of the Pub/Sub front, kept by a gRPC server interceptor (so that every
// call is counted, whichever service and however it ends):
//   backbone_pubsub_requests_total{method,code}   calls, by method (Publish, StreamingPull, …)
//                                                 and Pub/Sub status code (OK, NOT_FOUND, …)
//   backbone_pubsub_request_seconds{method}       how long calls took (a StreamingPull: its
//                                                 whole stream)
// They appear in `serve`'s GET /metrics next to the pipeline's.
//
// Thread-safety: thread-safe (Metrics is).
#pragma once

#include <memory>

#include "backbone/metrics.h"

namespace grpc::experimental {
class ServerInterceptorFactoryInterface;
}

namespace backbone::pubsub {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> metrics_interceptor(
    Metrics& metrics);

}  // namespace backbone::pubsub
