#include "pubsub/front/subscriber_service.h"

#include <chrono>
#include <set>

#include "pubsub/front/front_paging.h"
#include "pubsub/front/streaming_pull.h"
#include "pubsub/pubsub_convert.h"
#include "pubsub/pubsub_names.h"

namespace backbone::pubsub {
namespace {

constexpr int kMaxPullMessages = 1000;
constexpr int64_t kMaxPullWaitUs = 10 * kSecond;  // a Pull waits this long at most for one

Result<std::string> subscription_id(const FrontAccess& a, const std::string& path) {
  return parse_resource_path(path, a.project(), ResourceKind::kSubscription, "subscription");
}

bool topic_exists(const FrontAccess& a, const std::string& topic) {
  return a.broker().get_topic(topic).ok();
}

}  // namespace

Result<void> SubscriberService::check_topics(const auth::Principal& who,
                                             const SubscriptionConfig& config) const {
  if (auto t = a_.topic(who, config.topic); !t.ok()) return t.error();
  if (config.dead_letter) {
    if (auto t = a_.topic(who, config.dead_letter->topic); !t.ok()) return t.error();
  }
  return {};
}

grpc::Status SubscriberService::CreateSubscription(grpc::ServerContext* ctx, const Sub* req,
                                                   Sub* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto config = subscription_from_proto(*req, a_.project());
  if (!config.ok()) return to_status(config.error());
  auto labels = a_.new_resource(*who, config->name, config->labels);
  if (!labels.ok()) return to_status(labels.error());
  config->labels = *labels;
  if (auto r = check_topics(*who, *config); !r.ok()) return to_status(r.error());
  if (auto r = a_.broker().create_subscription(*config); !r.ok()) return to_status(r.error());
  subscription_to_proto(*config, a_.project(), true, resp);
  return grpc::Status::OK;
}

grpc::Status SubscriberService::GetSubscription(grpc::ServerContext* ctx,
                                                const v1::GetSubscriptionRequest* req, Sub* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  auto id = subscription_id(a_, req->subscription());
  if (!id.ok()) return to_status(id.error());
  auto s = a_.subscription(*who, *id);
  if (!s.ok()) return to_status(s.error());
  subscription_to_proto(*s, a_.project(), topic_exists(a_, s->topic), resp);
  return grpc::Status::OK;
}

grpc::Status SubscriberService::UpdateSubscription(grpc::ServerContext* ctx,
                                                   const v1::UpdateSubscriptionRequest* req,
                                                   Sub* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto id = subscription_id(a_, req->subscription().name());
  if (!id.ok()) return to_status(id.error());
  Owned owned;
  auto s = a_.subscription(*who, *id, &owned);
  if (!s.ok()) return to_status(s.error());
  if (owned.managed) return to_status(managed_by_topology("subscription", *id));
  auto updated =
      apply_subscription_update(*s, req->subscription(), req->update_mask(), a_.project());
  if (!updated.ok()) return to_status(updated.error());
  auto labels = a_.keep_env_label(*who, updated->labels);
  if (!labels.ok()) return to_status(labels.error());
  updated->labels = *labels;
  if (updated->dead_letter && updated->dead_letter != s->dead_letter) {
    if (auto t = a_.topic(*who, updated->dead_letter->topic); !t.ok()) return to_status(t.error());
  }
  if (auto r = a_.broker().update_subscription(*updated); !r.ok()) return to_status(r.error());
  subscription_to_proto(*updated, a_.project(), topic_exists(a_, updated->topic), resp);
  return grpc::Status::OK;
}

grpc::Status SubscriberService::ListSubscriptions(grpc::ServerContext* ctx,
                                                  const v1::ListSubscriptionsRequest* req,
                                                  v1::ListSubscriptionsResponse* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  if (auto p = check_project_path(req->project(), a_.project(), "project"); !p.ok()) {
    return to_status(p.error());
  }
  auto subs = a_.broker().list_subscriptions();
  if (!subs.ok()) return to_status(subs.error());
  auto topics = a_.broker().list_topics();
  if (!topics.ok()) return to_status(topics.error());
  std::set<std::string, std::less<>> topic_names;
  for (const auto& t : *topics) topic_names.insert(t.name);
  auto page = page_of(
      *subs, [&](const SubscriptionConfig& s) { return a_.visible(*who, s.name, s.labels); },
      req->page_size(), req->page_token());
  if (!page.ok()) return to_status(page.error());
  for (const SubscriptionConfig* s : page->items) {
    subscription_to_proto(*s, a_.project(), topic_names.count(s->topic) > 0,
                          resp->add_subscriptions());
  }
  resp->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

grpc::Status SubscriberService::DeleteSubscription(grpc::ServerContext* ctx,
                                                   const v1::DeleteSubscriptionRequest* req,
                                                   google::protobuf::Empty*) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto id = subscription_id(a_, req->subscription());
  if (!id.ok()) return to_status(id.error());
  Owned owned;
  if (auto s = a_.subscription(*who, *id, &owned); !s.ok()) return to_status(s.error());
  if (owned.managed) return to_status(managed_by_topology("subscription", *id));
  if (auto r = a_.broker().delete_subscription(*id); !r.ok()) return to_status(r.error());
  return to_status(a_.forget_policy(*who, iam_subscription(*id)));
}

Result<SubscriberService::AckTarget> SubscriberService::ack_target(
    const grpc::ServerContext& ctx, const std::string& path,
    const google::protobuf::RepeatedPtrField<std::string>& ack_ids) const {
  auto id = subscription_id(a_, path);
  if (!id.ok()) return id.error();
  auto who = a_.authorize(ctx, auth::Permission::kSubscribe, iam_subscription(*id));
  if (!who.ok()) return who.error();
  if (auto s = a_.consumable(*who, *id); !s.ok()) return s.error();
  if (ack_ids.empty()) return make_error(Errc::kInvalidArgument, "must not be empty", "ack_ids");
  return AckTarget{*id, std::vector<std::string>(ack_ids.begin(), ack_ids.end())};
}

grpc::Status SubscriberService::ModifyAckDeadline(grpc::ServerContext* ctx,
                                                  const v1::ModifyAckDeadlineRequest* req,
                                                  google::protobuf::Empty*) {
  auto target = ack_target(*ctx, req->subscription(), req->ack_ids());
  if (!target.ok()) return to_status(target.error());
  const int64_t deadline_us = int64_t{req->ack_deadline_seconds()} * kSecond;
  if (auto v = validate_delay(deadline_us, "ack_deadline_seconds"); !v.ok()) {
    return to_status(v.error());
  }
  return to_status(streams_.modify_ack_deadline(a_.broker(), target->subscription, target->ack_ids,
                                                deadline_us));
}

grpc::Status SubscriberService::Acknowledge(grpc::ServerContext* ctx,
                                            const v1::AcknowledgeRequest* req,
                                            google::protobuf::Empty*) {
  auto target = ack_target(*ctx, req->subscription(), req->ack_ids());
  if (!target.ok()) return to_status(target.error());
  return to_status(streams_.ack(a_.broker(), target->subscription, target->ack_ids));
}

grpc::Status SubscriberService::Pull(grpc::ServerContext* ctx, const v1::PullRequest* req,
                                     v1::PullResponse* resp) {
  auto id = subscription_id(a_, req->subscription());
  if (!id.ok()) return to_status(id.error());
  auto who = a_.authorize(*ctx, auth::Permission::kSubscribe, iam_subscription(*id));
  if (!who.ok()) return to_status(who.error());
  auto s = a_.consumable(*who, *id);
  if (!s.ok()) return to_status(s.error());
  if (req->max_messages() <= 0) {
    return to_status(make_error(Errc::kInvalidArgument, "must be positive", "max_messages"));
  }
  const int max = std::min(req->max_messages(), kMaxPullMessages);
  // return_immediately is deprecated in the API, but clients still send it: honour it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  int64_t wait_us = req->return_immediately() ? 0 : kMaxPullWaitUs;
#pragma GCC diagnostic pop
  const auto left = ctx->deadline() - std::chrono::system_clock::now();
  wait_us = std::min<int64_t>(
      wait_us,
      std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::microseconds>(left).count() - kSecond / 10));
  auto got = a_.broker().pull(*id, static_cast<size_t>(max), wait_us);
  if (!got.ok()) return to_status(got.error());
  const bool with_attempt = s->dead_letter.has_value();
  for (const auto& m : *got) received_to_proto(m, with_attempt, resp->add_received_messages());
  return grpc::Status::OK;
}

grpc::Status SubscriberService::StreamingPull(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::StreamingPullResponse, v1::StreamingPullRequest>* stream) {
  return serve_streaming_pull(a_, streams_, ctx, stream);
}

grpc::Status SubscriberService::ModifyPushConfig(grpc::ServerContext* ctx,
                                                 const v1::ModifyPushConfigRequest* req,
                                                 google::protobuf::Empty*) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto id = subscription_id(a_, req->subscription());
  if (!id.ok()) return to_status(id.error());
  if (auto s = a_.subscription(*who, *id); !s.ok()) return to_status(s.error());
  if (!req->push_config().push_endpoint().empty()) {
    return to_status(make_error(Errc::kInvalidArgument,
                                "push delivery is not supported by backbone", "push_config"));
  }
  return grpc::Status::OK;  // already a pull subscription
}

grpc::Status SubscriberService::ListSnapshots(grpc::ServerContext* ctx,
                                              const v1::ListSnapshotsRequest* req,
                                              v1::ListSnapshotsResponse* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  if (auto p = check_project_path(req->project(), a_.project(), "project"); !p.ok()) {
    return to_status(p.error());
  }
  auto all = a_.broker().list_snapshots();
  if (!all.ok()) return to_status(all.error());
  auto page = page_of(
      *all, [&](const SnapshotConfig& s) { return a_.visible(*who, s.name, s.labels); },
      req->page_size(), req->page_token());
  if (!page.ok()) return to_status(page.error());
  for (const SnapshotConfig* s : page->items) {
    snapshot_to_proto(*s, a_.project(), resp->add_snapshots());
  }
  resp->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

namespace {

Result<std::string> snapshot_id(const FrontAccess& a, const std::string& path) {
  return parse_resource_path(path, a.project(), ResourceKind::kSnapshot, "snapshot");
}

// The caller, checked for `permission`, and the snapshot at `path`, which must be theirs.
struct CallerSnapshot {
  auth::Principal who;
  std::string id;
  SnapshotConfig config;
};
Result<CallerSnapshot> caller_snapshot(const FrontAccess& a, const grpc::ServerContext& ctx,
                                       auth::Permission permission, const std::string& path) {
  auto who = a.authorize(ctx, permission);
  if (!who.ok()) return who.error();
  auto id = snapshot_id(a, path);
  if (!id.ok()) return id.error();
  auto s = a.snapshot(*who, *id);
  if (!s.ok()) return s.error();
  return CallerSnapshot{*who, *id, *s};
}

}  // namespace

grpc::Status SubscriberService::GetSnapshot(grpc::ServerContext* ctx,
                                            const v1::GetSnapshotRequest* req, v1::Snapshot* resp) {
  auto s = caller_snapshot(a_, *ctx, auth::Permission::kRead, req->snapshot());
  if (!s.ok()) return to_status(s.error());
  snapshot_to_proto(s->config, a_.project(), resp);
  return grpc::Status::OK;
}

grpc::Status SubscriberService::CreateSnapshot(grpc::ServerContext* ctx,
                                               const v1::CreateSnapshotRequest* req,
                                               v1::Snapshot* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  if (req->name().empty()) {
    return to_status(
        make_error(Errc::kInvalidArgument, "backbone names no snapshot for you: give one", "name"));
  }
  auto id = parse_resource_path(req->name(), a_.project(), ResourceKind::kSnapshot, "name");
  if (!id.ok()) return to_status(id.error());
  auto sub = subscription_id(a_, req->subscription());
  if (!sub.ok()) return to_status(sub.error());
  if (auto s = a_.subscription(*who, *sub); !s.ok()) return to_status(s.error());
  auto labels = a_.new_resource(*who, *id, Attributes(req->labels().begin(), req->labels().end()));
  if (!labels.ok()) return to_status(labels.error());
  auto made = a_.broker().create_snapshot(*id, *sub, *labels);
  if (!made.ok()) return to_status(made.error());
  snapshot_to_proto(*made, a_.project(), resp);
  return grpc::Status::OK;
}

grpc::Status SubscriberService::UpdateSnapshot(grpc::ServerContext* ctx,
                                               const v1::UpdateSnapshotRequest* req,
                                               v1::Snapshot* resp) {
  auto s = caller_snapshot(a_, *ctx, auth::Permission::kAdmin, req->snapshot().name());
  if (!s.ok()) return to_status(s.error());
  auto updated = apply_snapshot_update(s->config, req->snapshot(), req->update_mask());
  if (!updated.ok()) return to_status(updated.error());
  auto labels = a_.keep_env_label(s->who, updated->labels);
  if (!labels.ok()) return to_status(labels.error());
  updated->labels = *labels;
  if (auto r = a_.broker().update_snapshot(*updated); !r.ok()) return to_status(r.error());
  snapshot_to_proto(*updated, a_.project(), resp);
  return grpc::Status::OK;
}

grpc::Status SubscriberService::DeleteSnapshot(grpc::ServerContext* ctx,
                                               const v1::DeleteSnapshotRequest* req,
                                               google::protobuf::Empty*) {
  auto s = caller_snapshot(a_, *ctx, auth::Permission::kAdmin, req->snapshot());
  if (!s.ok()) return to_status(s.error());
  return to_status(a_.broker().delete_snapshot(s->id));
}

grpc::Status SubscriberService::Seek(grpc::ServerContext* ctx, const v1::SeekRequest* req,
                                     v1::SeekResponse*) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto id = subscription_id(a_, req->subscription());
  if (!id.ok()) return to_status(id.error());
  Owned owned;
  if (auto s = a_.subscription(*who, *id, &owned); !s.ok()) return to_status(s.error());
  if (owned.managed) return to_status(managed_by_topology("subscription", *id));
  if (req->target_case() == v1::SeekRequest::kTime) {
    return to_status(a_.broker().seek_to_time(*id, timestamp_of(req->time())));
  }
  if (req->target_case() == v1::SeekRequest::kSnapshot) {
    auto snap = snapshot_id(a_, req->snapshot());
    if (!snap.ok()) return to_status(snap.error());
    if (auto s = a_.snapshot(*who, *snap); !s.ok()) return to_status(s.error());
    return to_status(a_.broker().seek_to_snapshot(*id, *snap));
  }
  return to_status(
      make_error(Errc::kInvalidArgument, "names neither a time nor a snapshot", "target"));
}

}  // namespace backbone::pubsub
