#include "pubsub/front/publisher_service.h"

#include "pubsub/front/front_paging.h"
#include "pubsub/pubsub_convert.h"
#include "pubsub/pubsub_names.h"

namespace backbone::pubsub {
namespace {

constexpr int kMaxPublishMessages = 1000;  // as Google Cloud Pub/Sub

Result<std::string> topic_id(const FrontAccess& a, const std::string& path) {
  return parse_resource_path(path, a.project(), ResourceKind::kTopic, "topic");
}

}  // namespace

grpc::Status PublisherService::CreateTopic(grpc::ServerContext* ctx, const v1::Topic* req,
                                           v1::Topic* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto config = topic_from_proto(*req, a_.project());
  if (!config.ok()) return to_status(config.error());
  auto labels = a_.new_resource(*who, config->name, config->labels);
  if (!labels.ok()) return to_status(labels.error());
  config->labels = *labels;
  if (auto r = a_.broker().create_topic(a_.stored_topic(*who, *config)); !r.ok()) {
    return to_status(r.error());
  }
  topic_to_proto(*config, a_.project(), resp);
  return grpc::Status::OK;
}

grpc::Status PublisherService::UpdateTopic(grpc::ServerContext* ctx,
                                           const v1::UpdateTopicRequest* req, v1::Topic* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto id = topic_id(a_, req->topic().name());
  if (!id.ok()) return to_status(id.error());
  Owned owned;
  auto t = a_.topic(*who, *id, &owned);
  if (!t.ok()) return to_status(t.error());
  if (owned.managed) return to_status(managed_by_topology("topic", *id));
  auto updated =
      apply_topic_update(a_.caller_topic(*who, *t), req->topic(), req->update_mask(), a_.project());
  if (!updated.ok()) return to_status(updated.error());
  auto labels = a_.keep_env_label(*who, updated->labels);
  if (!labels.ok()) return to_status(labels.error());
  updated->labels = *labels;
  if (auto r = a_.broker().update_topic(a_.stored_topic(*who, *updated)); !r.ok()) {
    return to_status(r.error());
  }
  topic_to_proto(*updated, a_.project(), resp);
  return grpc::Status::OK;
}

grpc::Status PublisherService::Publish(grpc::ServerContext* ctx, const v1::PublishRequest* req,
                                       v1::PublishResponse* resp) {
  auto id = topic_id(a_, req->topic());
  if (!id.ok()) return to_status(id.error());
  auto who = a_.authorize(*ctx, auth::Permission::kPublish, iam_topic(*id));
  if (!who.ok()) return to_status(who.error());
  Owned owned;
  if (auto t = a_.topic(*who, *id, &owned); !t.ok()) return to_status(t.error());
  if (owned.managed && !who->permissions.has(auth::Permission::kPipeline)) {
    return to_status(make_error(
        Errc::kImmutable, "topic \"" + *id +
                              "\" is written by backbone: events enter through POST /v1/envs/" +
                              who->env +
                              "/events, which stores them first (a backbone process whose "
                              "broker is this front holds the \"pipeline\" role)"));
  }
  if (req->messages_size() == 0 || req->messages_size() > kMaxPublishMessages) {
    return to_status(
        make_error(Errc::kInvalidArgument, "must hold 1 to 1000 messages", "messages"));
  }
  std::vector<OutgoingMessage> messages;
  messages.reserve(static_cast<size_t>(req->messages_size()));
  for (int i = 0; i < req->messages_size(); ++i) {
    const auto& m = req->messages(i);
    if (m.data().empty() && m.attributes().empty()) {
      return to_status(make_error(Errc::kInvalidArgument, "has neither data nor attributes")
                           .at_item("messages", static_cast<size_t>(i)));
    }
    messages.push_back(message_from_proto(m));
  }
  auto ids = a_.broker().publish(*id, messages);
  if (!ids.ok()) return to_status(ids.error());
  for (auto& mid : *ids) resp->add_message_ids(std::move(mid));
  return grpc::Status::OK;
}

grpc::Status PublisherService::GetTopic(grpc::ServerContext* ctx, const v1::GetTopicRequest* req,
                                        v1::Topic* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  auto id = topic_id(a_, req->topic());
  if (!id.ok()) return to_status(id.error());
  auto t = a_.topic(*who, *id);
  if (!t.ok()) return to_status(t.error());
  topic_to_proto(a_.caller_topic(*who, *t), a_.project(), resp);
  return grpc::Status::OK;
}

grpc::Status PublisherService::ListTopics(grpc::ServerContext* ctx,
                                          const v1::ListTopicsRequest* req,
                                          v1::ListTopicsResponse* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  if (auto p = check_project_path(req->project(), a_.project(), "project"); !p.ok()) {
    return to_status(p.error());
  }
  auto all = a_.broker().list_topics();
  if (!all.ok()) return to_status(all.error());
  auto page = page_of(
      *all, [&](const TopicConfig& t) { return a_.visible(*who, t.name, t.labels); },
      req->page_size(), req->page_token());
  if (!page.ok()) return to_status(page.error());
  for (const TopicConfig* t : page->items) {
    topic_to_proto(a_.caller_topic(*who, *t), a_.project(), resp->add_topics());
  }
  resp->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

grpc::Status PublisherService::ListTopicSubscriptions(grpc::ServerContext* ctx,
                                                      const v1::ListTopicSubscriptionsRequest* req,
                                                      v1::ListTopicSubscriptionsResponse* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  auto id = topic_id(a_, req->topic());
  if (!id.ok()) return to_status(id.error());
  if (auto t = a_.topic(*who, *id); !t.ok()) return to_status(t.error());
  auto subs = a_.broker().list_subscriptions();
  if (!subs.ok()) return to_status(subs.error());
  auto page = page_of(
      *subs,
      [&](const SubscriptionConfig& s) {
        return s.topic == *id && a_.visible(*who, s.name, s.labels);
      },
      req->page_size(), req->page_token());
  if (!page.ok()) return to_status(page.error());
  for (const SubscriptionConfig* s : page->items) {
    resp->add_subscriptions(subscription_path(a_.project(), s->name));
  }
  resp->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

grpc::Status PublisherService::ListTopicSnapshots(grpc::ServerContext* ctx,
                                                  const v1::ListTopicSnapshotsRequest* req,
                                                  v1::ListTopicSnapshotsResponse* resp) {
  auto who = a_.authorize(*ctx, auth::Permission::kRead);
  if (!who.ok()) return to_status(who.error());
  auto id = topic_id(a_, req->topic());
  if (!id.ok()) return to_status(id.error());
  if (auto t = a_.topic(*who, *id); !t.ok()) return to_status(t.error());
  auto all = a_.broker().list_snapshots();
  if (!all.ok()) return to_status(all.error());
  auto page = page_of(
      *all,
      [&](const SnapshotConfig& s) { return s.topic == *id && a_.visible(*who, s.name, s.labels); },
      req->page_size(), req->page_token());
  if (!page.ok()) return to_status(page.error());
  for (const SnapshotConfig* s : page->items) {
    resp->add_snapshots(snapshot_path(a_.project(), s->name));
  }
  resp->set_next_page_token(page->next_token);
  return grpc::Status::OK;
}

grpc::Status PublisherService::DeleteTopic(grpc::ServerContext* ctx,
                                           const v1::DeleteTopicRequest* req,
                                           google::protobuf::Empty*) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto id = topic_id(a_, req->topic());
  if (!id.ok()) return to_status(id.error());
  Owned owned;
  if (auto t = a_.topic(*who, *id, &owned); !t.ok()) return to_status(t.error());
  if (owned.managed) return to_status(managed_by_topology("topic", *id));
  if (auto r = a_.broker().delete_topic(*id); !r.ok()) return to_status(r.error());
  return to_status(a_.forget_policy(*who, iam_topic(*id)));
}

grpc::Status PublisherService::DetachSubscription(grpc::ServerContext* ctx,
                                                  const v1::DetachSubscriptionRequest* req,
                                                  v1::DetachSubscriptionResponse*) {
  auto who = a_.authorize(*ctx, auth::Permission::kAdmin);
  if (!who.ok()) return to_status(who.error());
  auto id = parse_resource_path(req->subscription(), a_.project(), ResourceKind::kSubscription,
                                "subscription");
  if (!id.ok()) return to_status(id.error());
  Owned owned;
  if (auto s = a_.subscription(*who, *id, &owned); !s.ok()) return to_status(s.error());
  if (owned.managed) return to_status(managed_by_topology("subscription", *id));
  return to_status(a_.broker().detach_subscription(*id));
}

}  // namespace backbone::pubsub
