#include "pubsub/front/pubsub_front.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <unistd.h>

#include <chrono>

#include "pubsub/front/front_metrics.h"
#include "pubsub/front/iam_service.h"
#include "pubsub/front/publisher_service.h"
#include "pubsub/front/schema_service.h"
#include "pubsub/front/subscriber_service.h"

namespace backbone::pubsub {
namespace {

// A Publish request carries up to 10 MB of messages (Google Cloud Pub/Sub's limit), plus framing.
constexpr int kMaxRequestBytes = 11 << 20;

}  // namespace

struct PubsubFront::Impl {
  Impl(Broker& broker, const Topology& topology, const auth::Authenticator& tokens,
       FrontOptions options)
      : access(broker, topology, tokens, std::move(options)),
        publisher(access),
        subscriber(access),
        schemas(access),
        iam(access) {}
  FrontAccess access;
  PublisherService publisher;
  SubscriberService subscriber;
  SchemaService schemas;
  IamService iam;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool down = false;
};

PubsubFront::PubsubFront(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PubsubFront::~PubsubFront() { shutdown(0); }

Result<std::unique_ptr<PubsubFront>> PubsubFront::start(Broker& broker, const Topology& topology,
                                                        const auth::Authenticator& tokens,
                                                        FrontOptions options,
                                                        const std::string& listen) {
  Metrics* metrics = options.metrics;
  const std::string cert = options.tls_cert_file, key = options.tls_key_file;
  auto impl = std::make_unique<Impl>(broker, topology, tokens, std::move(options));
  grpc::ServerBuilder builder;
  if (metrics) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(metrics_interceptor(*metrics));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!cert.empty() || !key.empty()) {
    for (const std::string* f : {&cert, &key}) {
      if (::access(f->c_str(), R_OK) != 0) {
        return make_error(Errc::kInvalidArgument, "cannot read the TLS file " + *f,
                          f == &cert ? "tls.cert_file" : "tls.key_file");
      }
    }
    // The files are watched: a certificate and key replaced on disk serve new connections
    // within a second (gRPC checks that they match before it takes them).
    auto provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(key, cert, 1);
    grpc::experimental::TlsServerCredentialsOptions tls(provider);
    tls.watch_identity_key_cert_pairs();
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    credentials = grpc::experimental::TlsServerCredentials(tls);
  }
  builder.AddListeningPort(listen, credentials, &impl->port);
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.RegisterService(&impl->publisher);
  builder.RegisterService(&impl->subscriber);
  builder.RegisterService(&impl->schemas);
  builder.RegisterService(&impl->iam);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return make_error(Errc::kUnavailable, "the Pub/Sub front cannot listen on " + listen);
  }
  return std::unique_ptr<PubsubFront>(new PubsubFront(std::move(impl)));
}

int PubsubFront::port() const { return impl_->port; }

void PubsubFront::shutdown(int64_t grace_us) {
  if (impl_->down) return;
  impl_->down = true;
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::microseconds(grace_us));
  impl_->server->Wait();
}

}  // namespace backbone::pubsub
