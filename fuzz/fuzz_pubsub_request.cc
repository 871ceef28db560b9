// Pub/Sub requests into the front: a PubsubFront over an embedded broker on a loopback port,
// started once per process with the built-in topology provisioned, a token of sandbox (admin) and
// anonymous loopback calls acting in sandbox. The input's first byte picks an RPC (and whether
// the call carries the token), the rest is parsed as its request message (bytes that do not
// parse are sent as an empty request). Every call must come back with a status within its 2 s
// deadline: the front refuses what it must with a Result-mapped gRPC code, never crashes or
// hangs.
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "auth/tokens.h"
#include "backbone/broker.h"
#include "backbone/topology.h"
#include "fuzz/fuzz_target.h"
#include "google/pubsub/v1/pubsub.grpc.pb.h"
#include "pubsub/front/pubsub_front.h"

namespace {

namespace v1 = google::pubsub::v1;
using namespace backbone;

struct Front {
  std::string dir;
  std::unique_ptr<Broker> broker;
  std::unique_ptr<auth::TokenFile> tokens;
  std::string token;
  std::unique_ptr<pubsub::PubsubFront> front;
  std::unique_ptr<v1::Publisher::Stub> pub;
  std::unique_ptr<v1::Subscriber::Stub> sub;
};

Front& front() {
  static Front* f = [] {
    // Fuzz bytes in string fields make the client library log each parse; quiet.
    google::protobuf::SetLogHandler(
        [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    auto* f = new Front;
    f->dir = (std::filesystem::temp_directory_path() / "backbone-fuzz-front-XXXXXX").string();
    if (::mkdtemp(f->dir.data()) == nullptr) std::abort();
    BrokerOptions bo;
    bo.url = "embedded://" + f->dir + "/broker";
    auto b = Broker::open(bo);
    if (!b.ok()) std::abort();
    f->broker = std::move(*b);
    const std::vector<std::string> envs = {"sandbox", "production"};
    for (const auto& env : envs) {
      if (!provision_topology(*f->broker, Topology::built_in(), env, envs).ok()) std::abort();
    }
    auto t = auth::TokenFile::open(f->dir + "/tokens.json");
    if (!t.ok()) std::abort();
    f->tokens = std::make_unique<auth::TokenFile>(std::move(*t));
    f->token = *f->tokens->create("fuzz", "sandbox", {"admin"});
    pubsub::FrontOptions fo;
    fo.project = "backbone-local";
    fo.envs = envs;
    fo.anonymous = "sandbox";
    auto started =
        pubsub::PubsubFront::start(*f->broker, Topology::built_in(), *f->tokens, fo, "127.0.0.1:0");
    if (!started.ok()) std::abort();
    f->front = std::move(*started);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(f->front->port()),
                                       grpc::InsecureChannelCredentials());
    f->pub = v1::Publisher::NewStub(channel);
    f->sub = v1::Subscriber::NewStub(channel);
    return f;
  }();
  return *f;
}

// Calls `rpc` with the input parsed as its request.
template <class Request, class Response, class Call>
void call(std::string_view bytes, bool with_token, Call rpc) {
  Front& f = front();
  Request req;
  if (!req.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) req.Clear();
  Response res;
  grpc::ClientContext ctx;
  // The front answers a long Pull 100 ms before the caller's deadline: a deadline exceeded
  // is a call that hung.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (with_token) ctx.AddMetadata("authorization", "Bearer " + f.token);
  const grpc::Status status = rpc(&ctx, req, &res);
  BACKBONE_FUZZ_CHECK(status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Front& f = front();
  const uint8_t pick = data[0];
  const bool with_token = (pick & 0x80) != 0;
  const std::string_view rest = fuzz::text(data + 1, size - 1);
  switch (pick & 0x0f) {
    case 0:
      call<v1::Topic, v1::Topic>(
          rest, with_token, [&](auto* c, auto& q, auto* r) { return f.pub->CreateTopic(c, q, r); });
      break;
    case 1:
      call<v1::PublishRequest, v1::PublishResponse>(
          rest, with_token, [&](auto* c, auto& q, auto* r) { return f.pub->Publish(c, q, r); });
      break;
    case 2:
      call<v1::GetTopicRequest, v1::Topic>(
          rest, with_token, [&](auto* c, auto& q, auto* r) { return f.pub->GetTopic(c, q, r); });
      break;
    case 3:
      call<v1::ListTopicsRequest, v1::ListTopicsResponse>(
          rest, with_token, [&](auto* c, auto& q, auto* r) { return f.pub->ListTopics(c, q, r); });
      break;
    case 4:
      call<v1::DeleteTopicRequest, google::protobuf::Empty>(
          rest, with_token, [&](auto* c, auto& q, auto* r) { return f.pub->DeleteTopic(c, q, r); });
      break;
    case 5:
      call<v1::Subscription, v1::Subscription>(rest, with_token, [&](auto* c, auto& q, auto* r) {
        return f.sub->CreateSubscription(c, q, r);
      });
      break;
    case 6:
      call<v1::GetSubscriptionRequest, v1::Subscription>(
          rest, with_token,
          [&](auto* c, auto& q, auto* r) { return f.sub->GetSubscription(c, q, r); });
      break;
    case 7:
      call<v1::UpdateSubscriptionRequest, v1::Subscription>(
          rest, with_token,
          [&](auto* c, auto& q, auto* r) { return f.sub->UpdateSubscription(c, q, r); });
      break;
    case 8:
      call<v1::PullRequest, v1::PullResponse>(
          rest, with_token, [&](auto* c, auto& q, auto* r) { return f.sub->Pull(c, q, r); });
      break;
    case 9:
      call<v1::AcknowledgeRequest, google::protobuf::Empty>(
          rest, with_token, [&](auto* c, auto& q, auto* r) { return f.sub->Acknowledge(c, q, r); });
      break;
    case 10:
      call<v1::ModifyAckDeadlineRequest, google::protobuf::Empty>(
          rest, with_token,
          [&](auto* c, auto& q, auto* r) { return f.sub->ModifyAckDeadline(c, q, r); });
      break;
    case 11:
      call<v1::DeleteSubscriptionRequest, google::protobuf::Empty>(
          rest, with_token,
          [&](auto* c, auto& q, auto* r) { return f.sub->DeleteSubscription(c, q, r); });
      break;
    case 12:
      call<v1::ListSubscriptionsRequest, v1::ListSubscriptionsResponse>(
          rest, with_token,
          [&](auto* c, auto& q, auto* r) { return f.sub->ListSubscriptions(c, q, r); });
      break;
    case 13:
      call<v1::ListTopicSubscriptionsRequest, v1::ListTopicSubscriptionsResponse>(
          rest, with_token,
          [&](auto* c, auto& q, auto* r) { return f.pub->ListTopicSubscriptions(c, q, r); });
      break;
    default:
      break;
  }
  return 0;
}
