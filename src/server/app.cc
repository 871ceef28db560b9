#include "server/app.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "backbone/record_key.h"

namespace backbone::server {

Result<std::unique_ptr<App>> App::open(AppOptions options) {
  std::unique_ptr<App> app(new App(std::move(options)));
  const Config& c = app->o_.config;
  if (app->o_.envs.empty()) app->o_.envs = c.environments;
  for (const auto& env : app->o_.envs) BACKBONE_TRY(check_environment(c, env));
  if (app->o_.envs.size() > 1 && c.store.find("{env}") == std::string::npos) {
    return make_error(Errc::kInvalidArgument,
                      "the store URL has no {env}, so it can hold one environment only; serve "
                      "one with --env, or put {env} in the URL",
                      "store");
  }
  auto topology = Topology::load(c.topology);
  if (!topology.ok()) return topology.error();
  app->topology_ = std::move(*topology);
  pipeline::MergeSettings settings;
  auto def = pipeline::parse_conflict_policy(c.merge_default_policy);
  if (!def.ok())
    return make_error(Errc::kInvalidArgument, def.error().message, "merge.default_policy");
  settings.default_policy = *def;
  for (const auto& [type, name] : c.merge_policies) {
    auto p = pipeline::parse_conflict_policy(name);
    if (!p.ok())
      return make_error(Errc::kInvalidArgument, p.error().message, "merge.policies." + type);
    settings.policies[type] = *p;
  }
  settings.source_priority = c.source_priority;

  BrokerOptions bo;
  bo.url = c.broker;
  bo.clock = app->o_.clock;
  bo.buckets = c.cluster_buckets;
  auto broker = Broker::open(bo);
  if (!broker.ok()) return broker.error();
  app->broker_ = std::move(*broker);
  app->consumer_broker_ = std::make_unique<SpreadBroker>(
      *app->broker_, [a = app.get()](std::string_view sub) -> std::optional<SpreadPeers> {
        auto env = a->spread_env(sub);
        if (!env) return std::nullopt;
        cluster::LeaseKeeper* keeper = a->lease_keeper(*env);
        if (keeper == nullptr) return std::nullopt;
        SpreadPeers p{*env, keeper->member(), keeper->key(), {}};
        for (const ClusterMember& m : keeper->view().view.members) {
          if (m.id != p.self && !m.leaving && !m.address.empty()) p.address[m.id] = m.address;
        }
        return p;
      });
  app->tokens_ = std::make_unique<auth::TokenRegistry>(app->clock());
  app->iam_ = std::make_unique<auth::IamPolicies>();
  app->audit_jobs_ = std::make_unique<AuditJobs>(app->clock());
  // Tokens made before they lived in the stores, imported into them below.
  auto token_file = auth::TokenFile::open(c.tokens.empty() ? "var/tokens.json" : c.tokens);
  if (!token_file.ok()) return token_file.error();
  const auto old_tokens = token_file->entries();

  for (const auto& env : app->o_.envs) {
    auto url = store_url_for(c, env);
    if (!url.ok()) return url.error();
    {
      StoreOptions so;
      so.url = *url;
      so.role = Role::kMigrator;
      so.durability = c.durability;
      auto migrator = EventStore::open(so);
      if (!migrator.ok()) return migrator.error();
      BACKBONE_TRY((*migrator)->migrate());
      auto imported = auth::import_tokens(**migrator, env, old_tokens, app->clock().now());
      if (!imported.ok()) return imported.error();
      app->admin_stores_.emplace(env, std::move(*migrator));
    }
    auto provisioned = provision_topology(*app->broker_, app->topology_, env, c.environments);
    if (!provisioned.ok()) return provisioned.error();
    for (const ProvisionItem& item : *provisioned) {
      for (const std::string& w : item.warnings) app->warnings_.push_back(item.name + ": " + w);
    }
    // The lease keeper first: with split subscriptions, every commit carries its fence.
    cluster::LeaseKeeper* keeper = nullptr;
    std::vector<std::string> split;  // the stages' subscriptions that are split into buckets
    if (app->o_.start_stages && !app->broker_->shares_subscriptions()) {
      StoreOptions so;
      so.url = *url;
      so.role = Role::kMergeWorker;
      so.durability = c.durability;
      so.clock = app->o_.clock;
      auto store = EventStore::open(so);
      if (!store.ok()) return store.error();
      cluster::LeaseOptions lo;
      lo.member = cluster::new_member_id();
      lo.address = app->o_.address;
      lo.buckets = c.cluster_buckets;
      lo.ttl_us = c.lease_ttl_ms * 1000;
      lo.metrics = &app->metrics_;
      lo.env = env;
      auto k = cluster::LeaseKeeper::open(
          **store, app->o_.clock ? *app->o_.clock : SystemClock::instance(), lo);
      if (!k.ok()) return k.error();
      keeper = k->get();
      // The stages' subscriptions, and the sync subscription that consumers pull through any
      // process (routes_subscriptions.cc).
      for (const char* role : {"merge", "retry", "sync"}) {
        auto sub = app->topology_.subscription_for(role, env);
        if (!sub.ok()) return sub.error();
        auto n = app->broker_->buckets(sub->name);
        if (!n.ok()) return n.error();
        if (*n == 0) continue;
        if (*n != keeper->buckets()) {
          return make_error(Errc::kInvalidArgument,
                            "subscription " + sub->name + " is split into " + std::to_string(*n) +
                                " buckets, but the store of " + env + " records " +
                                std::to_string(keeper->buckets()) +
                                "; [cluster] buckets must match what the topics were created with",
                            "cluster.buckets");
        }
        split.push_back(sub->name);
        if (std::string_view(role) == "sync") app->spread_.emplace(sub->name, env);
      }
      app->lease_stores_.emplace(env, std::move(*store));
      app->keepers_.emplace(env, std::move(*k));
    }
    pipeline::PipelineOptions po;
    po.env = env;
    po.environments = c.environments;
    po.store_url = *url;
    po.durability = c.durability;
    po.broker = app->broker_.get();
    po.topology = &app->topology_;
    po.clock = app->o_.clock;
    po.settings = settings;
    po.metrics = &app->metrics_;
    po.workers = app->o_.workers;
    po.on_stage_error = app->o_.on_stage_error;
    po.watchers = true;  // the audit projector and the DLQ inspector run with the stages
    if (!split.empty()) {
      po.fence = [keeper](const std::string& key) -> Result<BucketFence> {
        const uint32_t bucket = bucket_of(key, keeper->buckets());
        auto epoch = keeper->epoch(bucket);
        if (!epoch) {
          return make_error(Errc::kFenced,
                            "bucket " + std::to_string(bucket) + " is not this process's");
        }
        return BucketFence{bucket, *epoch};
      };
      // One relay per environment: bucket 0's owner's. Another process's ingest in progress
      // takes its own events out of the outbox; the relay's grace leaves them to it.
      po.relays_here = [keeper] { return keeper->epoch(0).has_value(); };
    }
    auto p = pipeline::EnvironmentPipeline::open(po);
    if (!p.ok()) return p.error();
    // Alone, a process relays what the outbox holds at once; with others, ingests of theirs may
    // be in progress, and the running relay of bucket 0's owner takes it, after its grace.
    // A broker that cannot take them now (down, its disk full) does not keep the process from
    // serving: the running relay takes the outbox again every few seconds.
    if (!po.relays_here) {
      auto relayed = (*p)->relay();
      if (!relayed.ok() && relayed.code() != Errc::kUnavailable) return relayed.error();
      if (!relayed.ok() && po.on_stage_error) po.on_stage_error("relay", relayed.error());
    }
    auto recovered = (*p)->recover_parked();
    if (!recovered.ok()) return recovered.error();
    if (keeper) {
      // The stages pull only the buckets this process owns: none until the first tick.
      Broker* broker = app->broker_.get();
      auto serve = [broker, keeper, split] {
        std::map<uint32_t, uint64_t> mine;
        for (const BucketLease& l : keeper->owned()) mine[l.bucket] = l.epoch;
        for (const std::string& sub : split) (void)broker->serve_buckets(sub, mine);
      };
      serve();
      keeper->on_change([serve, a = app.get(), env](const std::vector<BucketLease>&,
                                                    const std::vector<uint32_t>&) {
        serve();
        {
          std::lock_guard lock(a->tell_mu_);
          a->tell_pending_.insert(env);
        }
        a->tell_wake_.notify_all();
      });
      keeper->start();
    }
    if (app->o_.start_stages) (*p)->start();
    app->tokens_->add_env(env, (*p)->ingest_store());
    app->iam_->add_env(env, (*p)->ingest_store(), app->admin_stores_.at(env).get());
    app->pipelines_.emplace(env, std::move(*p));
  }
  // The other configured environments' tokens too, where their stores can be read: the Pub/Sub
  // front reaches every environment's resources in the broker, and a token of another
  // environment is refused as such (403), not as unknown.
  for (const std::string& env : c.environments) {
    if (app->pipelines_.count(env)) continue;
    auto url = store_url_for(c, env);
    if (!url.ok()) continue;
    StoreOptions so;
    so.url = *url;
    so.role = Role::kSyncWorker;
    auto store = EventStore::open(so);
    if (!store.ok()) continue;  // not made yet: its tokens are unknown here
    app->tokens_->add_env(env, **store);
    app->iam_->add_env(env, **store, nullptr);  // set through a process that serves it
    app->token_stores_.push_back(std::move(*store));
  }
  (void)app->tokens_->refresh();  // an environment whose store is not migrated yet has none
  (void)app->iam_->refresh();
  app->token_thread_ = std::thread([a = app.get()] { a->keep_tokens(); });
  if (!app->keepers_.empty())
    app->tell_thread_ = std::thread([a = app.get()] { a->tell_members(); });
  return app;
}

void App::tell_members_of(const std::string& env) {
  auto it = keepers_.find(env);
  if (it == keepers_.end()) return;
  cluster::LeaseKeeper& keeper = *it->second;
  SpreadPeers self{env, keeper.member(), keeper.key(), {}};
  for (const ClusterMember& m : keeper.view().view.members) {
    if (m.id != self.self && !m.leaving && !m.address.empty()) {
      (void)call_member(self, m.address, "tick", nlohmann::json::object());
    }
  }
}

void App::tell_members() {
  std::unique_lock lock(tell_mu_);
  for (;;) {
    tell_wake_.wait(lock, [this] { return tell_stop_ || !tell_pending_.empty(); });
    if (tell_stop_) return;
    const std::set<std::string> envs = std::move(tell_pending_);
    tell_pending_.clear();
    lock.unlock();
    for (const std::string& env : envs) tell_members_of(env);
    lock.lock();
  }
}

void App::keep_tokens() {
  // Every second the tokens and IAM policies are read again (a token made or revoked, or a
  // policy set, through any process counts here within about a second); every fifth, the uses
  // noted are written.
  std::unique_lock lock(token_mu_);
  for (int beat = 1; !token_stop_; ++beat) {
    if (token_wake_.wait_for(lock, std::chrono::seconds(1), [this] { return token_stop_; })) break;
    lock.unlock();
    (void)tokens_->refresh();
    (void)iam_->refresh();
    if (beat % 5 == 0) (void)tokens_->flush_uses();
    lock.lock();
  }
}

Result<std::string> App::create_token(const std::string& env, const std::string& name,
                                      const std::vector<std::string>& roles,
                                      std::optional<int64_t> ttl_us) {
  auto made = create_stored_token(env, name, roles, ttl_us, "serve (test set-up)");
  if (!made.ok()) return made.error();
  return made->token;
}

Result<auth::CreatedToken> App::create_stored_token(const std::string& env, const std::string& name,
                                                    const std::vector<std::string>& roles,
                                                    std::optional<int64_t> ttl_us,
                                                    const std::string& actor) {
  auto store = admin_store(env);
  if (!store.ok()) return store.error();
  auto made = auth::create_token(**store, env, name, roles, ttl_us, clock().now(), actor);
  if (!made.ok()) return made.error();
  (void)tokens_->refresh();
  return made;
}

Result<StoredToken> App::revoke_token(const std::string& env, const std::string& which,
                                      const std::string& actor) {
  auto store = admin_store(env);
  if (!store.ok()) return store.error();
  auto revoked = auth::revoke_token(**store, which, clock().now(), actor);
  if (!revoked.ok()) return revoked.error();
  (void)tokens_->refresh();
  return revoked;
}

Result<void> App::record_admin(const std::string& env, const std::string& actor,
                               const std::string& action, const std::string& target,
                               std::optional<std::string> detail, const char* done) {
  auto store = admin_store(env);
  if (!store.ok()) return store.error();
  return auth::record_admin_act(**store, {clock().now(), actor, action, target, std::move(detail)},
                                done);
}

Result<std::vector<AdminAction>> App::admin_actions(const std::string& env,
                                                    std::optional<EventId> after, size_t limit) {
  auto store = admin_store(env);
  if (!store.ok()) return store.error();
  return (*store)->admin_actions(after, limit);
}

Result<EventStore*> App::admin_store(std::string_view env) {
  auto it = admin_stores_.find(env);
  if (it == admin_stores_.end()) {
    return make_error(Errc::kNotFound, "unknown environment \"" + std::string(env) + "\"");
  }
  return it->second.get();
}

App::~App() { stop(); }

Result<std::unique_ptr<EventStore>> App::open_store(const std::string& env, Role role) {
  if (!pipelines_.count(env)) {
    return make_error(Errc::kNotFound, "unknown environment \"" + env + "\"");
  }
  auto url = store_url_for(o_.config, env);
  if (!url.ok()) return url.error();
  StoreOptions so;
  so.url = *url;
  so.role = role;
  so.durability = o_.config.durability;
  so.clock = o_.clock;
  return EventStore::open(so);
}

Result<pipeline::EnvironmentPipeline*> App::pipeline(std::string_view env) {
  auto it = pipelines_.find(env);
  if (it == pipelines_.end()) {
    return make_error(Errc::kNotFound, "unknown environment \"" + std::string(env) + "\"");
  }
  return it->second.get();
}

void App::refresh_gauges() {
  for (const auto& env : o_.envs) {
    for (const SubscriptionConfig& s : topology_.subscriptions(env)) {
      const auto st = broker_->stats(s.name);
      const Labels l = {{"env", env}, {"subscription", s.name}};
      // A figure the broker cannot know is NaN (Prometheus's "no value"), and
      // backbone_subscription_stats_known says so.
      const SubscriptionStats none;
      const SubscriptionStats& v = st.ok() ? *st : none;
      auto value = [](const auto& figure, double scale = 1) {
        return figure ? static_cast<double>(*figure) / scale : std::nan("");
      };
      metrics_
          .gauge("backbone_subscription_stats_known",
                 "1 when the broker knows the subscription's own figures, 0 when it does not "
                 "(they are NaN; pubsub:// gives this process's part only)",
                 l)
          .set(v.undelivered && v.in_flight ? 1 : 0);
      metrics_.gauge("backbone_subscription_undelivered", "Messages waiting for delivery", l)
          .set(value(v.undelivered));
      metrics_.gauge("backbone_subscription_in_flight", "Messages delivered, not yet acked", l)
          .set(value(v.in_flight));
      metrics_
          .gauge("backbone_subscription_oldest_unacked_age_seconds",
                 "Age of the oldest unacked message", l)
          .set(value(v.oldest_unacked_age_us, kSecond));
      metrics_
          .gauge("backbone_subscription_dead_lettered", "Messages dead-lettered since creation", l)
          .set(value(v.dead_lettered));
      if (v.client) {
        metrics_
            .gauge("backbone_subscription_client_in_flight",
                   "Messages this process has handed out and not yet settled", l)
            .set(static_cast<double>(v.client->in_flight));
        metrics_
            .gauge("backbone_subscription_client_held",
                   "Messages this process holds behind their ordering key or for a backoff", l)
            .set(static_cast<double>(v.client->held));
        metrics_
            .gauge("backbone_subscription_client_dead_lettered",
                   "Messages this process dead-lettered since it started", l)
            .set(static_cast<double>(v.client->dead_lettered));
      }
    }
  }
}

std::optional<std::string> App::spread_env(std::string_view subscription) const {
  auto it = spread_.find(subscription);
  if (it == spread_.end()) return std::nullopt;
  return it->second;
}

cluster::LeaseKeeper* App::lease_keeper(std::string_view env) {
  auto it = keepers_.find(env);
  return it == keepers_.end() ? nullptr : it->second.get();
}

void App::stop() {
  if (audit_jobs_) audit_jobs_->stop();
  {
    std::lock_guard lock(token_mu_);
    token_stop_ = true;
  }
  token_wake_.notify_all();
  if (token_thread_.joinable()) {
    token_thread_.join();
    (void)tokens_->flush_uses();
  }
  for (auto& [env, p] : pipelines_) p->stop();
  {
    std::lock_guard lock(tell_mu_);
    tell_stop_ = true;
  }
  tell_wake_.notify_all();
  if (tell_thread_.joinable()) tell_thread_.join();
  // No commit of this process follows: its buckets go to the others at once; they take them at
  // their next beat, or now, being told.
  for (auto& [env, k] : keepers_) {
    k->stop();
    const std::string& e = env;
    (void)k->leave([this, &e] { tell_members_of(e); });
  }
  keepers_.clear();
}

}  // namespace backbone::server
