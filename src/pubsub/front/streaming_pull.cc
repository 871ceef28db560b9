#include "pubsub/front/streaming_pull.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "pubsub/pubsub_convert.h"
#include "pubsub/pubsub_names.h"

namespace backbone::pubsub {
namespace {

using GrpcStream = grpc::ServerReaderWriter<v1::StreamingPullResponse, v1::StreamingPullRequest>;

constexpr int64_t kPullWaitUs = 100'000;       // how often the call looks for its end
constexpr int64_t kRoomWaitUs = 100'000;       // how long it waits for flow-control room
constexpr size_t kMaxPullBatch = 1000;         // messages per pull from the broker
constexpr size_t kMaxResponseBytes = 3 << 20;  // under the 4 MiB default of gRPC clients

size_t message_bytes(const ReceivedMessage& m) {
  return wire_bytes(m.message.data, m.message.attributes, m.message.ordering_key);
}

class Session final : public StreamRegistry::Stream {
 public:
  Session(const FrontAccess& a, StreamRegistry& registry, grpc::ServerContext* ctx,
          GrpcStream* stream)
      : a_(a), registry_(registry), ctx_(ctx), stream_(stream) {}

  grpc::Status run() {
    v1::StreamingPullRequest first;
    if (!stream_->Read(&first)) return grpc::Status::OK;  // closed before it asked for anything
    if (auto r = open(first); !r.ok()) return to_status(r.error());
    if (auto r = apply(first); !r.ok()) return to_status(r.error());
    registry_.add(sub_, this);
    std::thread reader([this] { read_loop(); });
    grpc::Status status = write_loop();
    {
      std::lock_guard lock(mu_);
      if (!read_ended_) ctx_->TryCancel();  // unblocks the reader's Read
    }
    reader.join();
    registry_.remove(sub_, this);
    std::lock_guard lock(mu_);
    return error_.ok() ? status : error_;
  }

  std::vector<std::string> release(std::span<const std::string> ids) override {
    std::vector<std::string> keys;
    std::lock_guard lock(mu_);
    for (const auto& id : ids) {
      if (auto it = outstanding_.find(id); it != outstanding_.end()) {
        if (!it->second.key.empty()) keys.push_back(std::move(it->second.key));
        outstanding_bytes_ -= it->second.bytes;
        outstanding_.erase(it);
      }
    }
    room_.notify_all();
    return keys;
  }

  void extend(std::span<const std::string> ids, int64_t us) override {
    std::lock_guard lock(mu_);
    const int64_t until = a_.clock().now().micros() + us;
    for (const auto& id : ids) {
      if (auto it = outstanding_.find(id); it != outstanding_.end()) it->second.until_us = until;
    }
  }

 private:
  Result<void> open(const v1::StreamingPullRequest& req) {
    auto id = parse_resource_path(req.subscription(), a_.project(), ResourceKind::kSubscription,
                                  "subscription");
    if (!id.ok()) return id.error();
    auto who = a_.authorize(*ctx_, auth::Permission::kSubscribe, iam_subscription(*id));
    if (!who.ok()) return who.error();
    auto s = a_.consumable(*who, *id);
    if (!s.ok()) return s.error();
    const int64_t deadline = int64_t{req.stream_ack_deadline_seconds()} * kSecond;
    if (deadline < 10 * kSecond || deadline > 600 * kSecond) {
      return make_error(Errc::kInvalidArgument, "must be 10 to 600", "stream_ack_deadline_seconds");
    }
    sub_ = *id;
    config_ = *s;
    keyed_ = config_.ordered && config_.key_delivery == KeyDelivery::kStreamed;
    stream_deadline_us_ = deadline;
    max_messages_ = req.max_outstanding_messages() > 0
                        ? static_cast<size_t>(req.max_outstanding_messages())
                        : SIZE_MAX;
    max_bytes_ = req.max_outstanding_bytes() > 0 ? static_cast<size_t>(req.max_outstanding_bytes())
                                                 : SIZE_MAX;
    return {};
  }

  // Acks and deadline changes of one request.
  Result<void> apply(const v1::StreamingPullRequest& req) {
    if (!req.ack_ids().empty()) {
      std::vector<std::string> ids(req.ack_ids().begin(), req.ack_ids().end());
      BACKBONE_TRY(registry_.ack(a_.broker(), sub_, ids));
    }
    if (req.modify_deadline_seconds_size() != req.modify_deadline_ack_ids_size()) {
      return make_error(Errc::kInvalidArgument,
                        "modify_deadline_seconds and modify_deadline_ack_ids differ in length",
                        "modify_deadline_seconds");
    }
    std::map<int32_t, std::vector<std::string>> by_deadline;
    for (int i = 0; i < req.modify_deadline_seconds_size(); ++i) {
      by_deadline[req.modify_deadline_seconds(i)].push_back(req.modify_deadline_ack_ids(i));
    }
    for (auto& [seconds, ids] : by_deadline) {
      const int64_t us = int64_t{seconds} * kSecond;
      BACKBONE_TRY(validate_delay(us, "modify_deadline_seconds"));
      BACKBONE_TRY(registry_.modify_ack_deadline(a_.broker(), sub_, ids, us));
    }
    return {};
  }

  void read_loop() {
    v1::StreamingPullRequest req;
    while (stream_->Read(&req)) {
      if (auto r = apply(req); !r.ok()) {
        std::lock_guard lock(mu_);
        error_ = to_status(r.error());
        break;
      }
    }
    std::lock_guard lock(mu_);
    read_ended_ = true;
    room_.notify_all();
  }

  grpc::Status write_loop() {
    bool first = true;
    while (!ctx_->IsCancelled()) {
      size_t want = 0;
      std::vector<std::string> expired_keys;
      {
        std::unique_lock lock(mu_);
        if (read_ended_) break;
        expired_keys = expire_leases();
        want = room();
      }
      registry_.keys_released(sub_, this, expired_keys);
      if (want == 0) {
        std::unique_lock lock(mu_);
        room_.wait_for(lock, std::chrono::microseconds(kRoomWaitUs));
        continue;
      }
      auto got = keyed_ ? registry_.pull_keyed(a_.broker(), sub_, this, want, kPullWaitUs)
                        : a_.broker().pull(sub_, want, kPullWaitUs);
      if (!got.ok()) return to_status(got.error());
      if (got->empty()) continue;
      if (stream_deadline_us_ != config_.ack_deadline_us) {
        std::vector<std::string> ids;
        for (const auto& m : *got) ids.push_back(m.ack_id);
        if (auto r = a_.broker().modify_ack_deadline(sub_, ids, stream_deadline_us_); !r.ok()) {
          return to_status(r.error());
        }
      }
      lease(*got);
      if (!write(*got, first)) break;
      first = false;
    }
    return grpc::Status::OK;
  }

  // Writes `got` in responses of at most kMaxResponseBytes (one message at least each).
  bool write(const std::vector<ReceivedMessage>& got, bool first) {
    const bool with_attempt = config_.dead_letter.has_value();
    v1::StreamingPullResponse resp;
    size_t bytes = 0;
    auto flush = [&] {
      if (first) {
        resp.mutable_subscription_properties()->set_message_ordering_enabled(config_.ordered);
        first = false;
      }
      const bool ok = stream_->Write(resp);
      resp.Clear();
      bytes = 0;
      return ok;
    };
    for (const auto& m : got) {
      const size_t n = message_bytes(m);
      if (bytes > 0 && bytes + n > kMaxResponseBytes && !flush()) return false;
      received_to_proto(m, with_attempt, resp.add_received_messages());
      bytes += n;
    }
    return flush();
  }

  // How many more messages flow control lets this stream hold. REQUIRES: mu_ held.
  size_t room() const {
    if (outstanding_.size() >= max_messages_ || outstanding_bytes_ >= max_bytes_) return 0;
    return std::min(kMaxPullBatch, max_messages_ - outstanding_.size());
  }

  void lease(const std::vector<ReceivedMessage>& got) {
    std::lock_guard lock(mu_);
    const int64_t until = a_.clock().now().micros() + stream_deadline_us_;
    for (const auto& m : got) {
      const size_t n = message_bytes(m);
      auto [it, fresh] =
          outstanding_.try_emplace(m.ack_id, Lease{n, until, keyed_ ? m.message.ordering_key : ""});
      if (fresh) outstanding_bytes_ += n;
    }
  }

  // Leases whose deadline passed no longer count: the broker redelivers those messages.
  // Returns the ordering keys of those that had one. REQUIRES: mu_ held.
  std::vector<std::string> expire_leases() {
    std::vector<std::string> keys;
    const int64_t now = a_.clock().now().micros();
    if (now < next_expiry_check_us_) return keys;
    next_expiry_check_us_ = now + kSecond;
    for (auto it = outstanding_.begin(); it != outstanding_.end();) {
      if (it->second.until_us <= now) {
        if (!it->second.key.empty()) keys.push_back(std::move(it->second.key));
        outstanding_bytes_ -= it->second.bytes;
        it = outstanding_.erase(it);
      } else {
        ++it;
      }
    }
    return keys;
  }

  struct Lease {
    size_t bytes = 0;
    int64_t until_us = 0;
    std::string key;  // its ordering key, on a subscription whose keys stream
  };
  const FrontAccess& a_;
  StreamRegistry& registry_;
  grpc::ServerContext* ctx_;
  GrpcStream* stream_;
  std::string sub_;
  SubscriptionConfig config_;
  bool keyed_ = false;  // a key is on one stream at a time (StreamRegistry::pull_keyed)
  int64_t stream_deadline_us_ = 0;
  size_t max_messages_ = SIZE_MAX, max_bytes_ = SIZE_MAX;

  std::mutex mu_;
  std::condition_variable room_;
  std::unordered_map<std::string, Lease> outstanding_;  // GUARDED_BY(mu_)
  size_t outstanding_bytes_ = 0;                        // GUARDED_BY(mu_)
  int64_t next_expiry_check_us_ = 0;                    // GUARDED_BY(mu_)
  bool read_ended_ = false;                             // GUARDED_BY(mu_)
  grpc::Status error_;                                  // GUARDED_BY(mu_)
};

}  // namespace

grpc::Status serve_streaming_pull(const FrontAccess& access, StreamRegistry& registry,
                                  grpc::ServerContext* ctx, GrpcStream* stream) {
  Session session(access, registry, ctx, stream);
  return session.run();
}

}  // namespace backbone::pubsub
