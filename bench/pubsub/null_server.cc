// A Pub/Sub server that does nothing: CreateTopic and DeleteTopic answer at once, Publish answers
// ids without keeping anything. Against it, bench/pubsub/front_bench.cjs (BENCH_PHASES=publish)
// measures what Google's Node client can publish at most on this machine: the ceiling of the
// publish figures of scripts/bench-pubsub-front.sh. Prints "listening PORT" once it listens, and
// runs until killed.
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "google/pubsub/v1/pubsub.grpc.pb.h"

namespace {

namespace v1 = google::pubsub::v1;

class NullPublisher final : public v1::Publisher::Service {
  grpc::Status CreateTopic(grpc::ServerContext*, const v1::Topic* req, v1::Topic* resp) override {
    *resp = *req;
    return grpc::Status::OK;
  }
  grpc::Status DeleteTopic(grpc::ServerContext*, const v1::DeleteTopicRequest*,
                           google::protobuf::Empty*) override {
    return grpc::Status::OK;
  }
  grpc::Status Publish(grpc::ServerContext*, const v1::PublishRequest* req,
                       v1::PublishResponse* resp) override {
    for (int i = 0; i < req->messages_size(); ++i) {
      resp->add_message_ids(std::to_string(next_.fetch_add(1)));
    }
    return grpc::Status::OK;
  }
  std::atomic<uint64_t> next_{1};
};

}  // namespace

int main() {
  NullPublisher publisher;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.RegisterService(&publisher);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  std::printf("listening %d\n", port);
  std::fflush(stdout);
  server->Wait();
}
