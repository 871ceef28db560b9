// App: what `backbone serve` runs — the broker, and for each served environment its store,
// topology and pipeline — ready for the HTTP API. Opening it migrates each store and
// provisions each environment's topology (both idempotent), relays what a crash left
// unpublished, takes up the events parked before it, and starts the merge and retry stages.
//
// Thread-safety: thread-safe after open.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "auth/iam_policies.h"
#include "auth/token_registry.h"
#include "auth/tokens.h"
#include "backbone/broker.h"
#include "backbone/config.h"
#include "backbone/metrics.h"
#include "backbone/topology.h"
#include "cluster/lease_keeper.h"
#include "pipeline/pipeline.h"
#include "server/audit_jobs.h"
#include "server/spread_broker.h"

namespace backbone::server {

struct AppOptions {
  Config config;
  std::vector<std::string> envs;  // the environments to serve
  const Clock* clock = nullptr;
  bool start_stages = true;                    // false: the caller drives the stages (tests)
  size_t workers = 2;                          // per stage and environment
  pipeline::StageErrorHandler on_stage_error;  // may be null
  std::string address;                         // where this process serves, for its member row
};

class App {
 public:
  static Result<std::unique_ptr<App>> open(AppOptions options);
  ~App();

  const Config& config() const { return o_.config; }
  const Topology& topology() const { return topology_; }
  // The broker of backbone's own stages: this process's part of every split subscription.
  Broker& broker() { return *broker_; }
  // The broker of external consumers (the HTTP sync routes and the Pub/Sub front): the same,
  // but pulls of a subscription that this process serves only a part of reach every member
  // (spread_broker.h).
  Broker& consumer_broker() { return *consumer_broker_; }
  // The environment of a subscription that consumers pull through any member, if `subscription`
  // is one.
  std::optional<std::string> spread_env(std::string_view subscription) const;
  // The bearer tokens of every served environment, from their stores (doc/tokens.md).
  auth::TokenRegistry& tokens() { return *tokens_; }
  // The IAM policies of every served environment's topics and subscriptions (the Pub/Sub
  // front's GetIamPolicy, SetIamPolicy, TestIamPermissions), read again every second.
  auth::IamPolicies& iam() { return *iam_; }
  // `env`'s store as the migrator, for the admin's acts (tokens); kNotFound for an environment
  // not served here.
  Result<EventStore*> admin_store(std::string_view env);
  // Makes a token of `env` in its store and returns it (it works here at once, and on the
  // environment's other processes within about a second).
  Result<std::string> create_token(const std::string& env, const std::string& name,
                                   const std::vector<std::string>& roles,
                                   std::optional<int64_t> ttl_us = std::nullopt);
  // The same, with the row as stored; `actor` (auth::Principal::actor) made it, and the admin
  // audit says so.
  Result<auth::CreatedToken> create_stored_token(const std::string& env, const std::string& name,
                                                 const std::vector<std::string>& roles,
                                                 std::optional<int64_t> ttl_us,
                                                 const std::string& actor);
  // Revokes the token that `which` names (auth::revoke_token); it stops working here at once.
  Result<StoredToken> revoke_token(const std::string& env, const std::string& which,
                                   const std::string& actor);
  // Writes an act of `actor` to `env`'s admin audit (auth::record_admin_act), after the act
  // (`done` says what held if the record fails).
  Result<void> record_admin(const std::string& env, const std::string& actor,
                            const std::string& action, const std::string& target,
                            std::optional<std::string> detail, const char* done);
  // `env`'s admin audit, in order.
  Result<std::vector<AdminAction>> admin_actions(const std::string& env,
                                                 std::optional<EventId> after, size_t limit);
  // A new connection to `env`'s store as `role` (kNotFound for an environment not served here).
  Result<std::unique_ptr<EventStore>> open_store(const std::string& env, Role role);
  // The audit verifications that run in the background (POST .../audit:verify).
  AuditJobs& audit_jobs() { return *audit_jobs_; }
  Metrics& metrics() { return metrics_; }
  const Clock& clock() const { return o_.clock ? *o_.clock : SystemClock::instance(); }
  const std::vector<std::string>& envs() const { return o_.envs; }
  // What provisioning at start-up warned of (what the broker kept otherwise than the topology).
  const std::vector<std::string>& warnings() const { return warnings_; }
  // kNotFound when `env` is not configured or not served here.
  Result<pipeline::EnvironmentPipeline*> pipeline(std::string_view env);
  // This process's lease keeper of `env` (doc/scale_out.md): nullptr where the broker shares its
  // subscriptions among processes (pubsub://), which needs no buckets, or the stages do not run.
  cluster::LeaseKeeper* lease_keeper(std::string_view env);
  // Refreshes the backlog gauges of every served subscription.
  void refresh_gauges();
  // Stops the stages (what they hold is finished first), then hands this process's buckets over.
  void stop();

 private:
  explicit App(AppOptions o) : o_(std::move(o)) {}
  AppOptions o_;
  Topology topology_;
  Metrics metrics_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<SpreadBroker> consumer_broker_;
  // Subscriptions pulled through any member (split, and served here in part), by name -> env.
  std::map<std::string, std::string, std::less<>> spread_;
  std::unique_ptr<auth::TokenRegistry> tokens_;
  std::unique_ptr<auth::IamPolicies> iam_;
  std::map<std::string, std::unique_ptr<EventStore>, std::less<>> admin_stores_;  // migrator
  std::vector<std::unique_ptr<EventStore>> token_stores_;  // of environments not served here
  // The thread that reads the tokens again every second (keep_tokens), until stop().
  void keep_tokens();
  std::mutex token_mu_;
  std::condition_variable token_wake_;
  bool token_stop_ = false;  // GUARDED_BY(token_mu_)
  std::thread token_thread_;
  std::map<std::string, std::unique_ptr<pipeline::EnvironmentPipeline>, std::less<>> pipelines_;
  // Per environment: the keeper's store connection (merge_worker) and the keeper.
  std::map<std::string, std::unique_ptr<EventStore>, std::less<>> lease_stores_;
  std::map<std::string, std::unique_ptr<cluster::LeaseKeeper>, std::less<>> keepers_;
  // After this process's buckets change, the other members of that environment are told to tick
  // (`cluster:tick`), so that every view shows the move at once, not a beat later; the calls run
  // on this thread (tell_members), not on the keeper's ticking one, until stop().
  void tell_members();
  void tell_members_of(const std::string& env);
  std::mutex tell_mu_;
  std::condition_variable tell_wake_;
  std::set<std::string> tell_pending_;  // GUARDED_BY(tell_mu_): environments whose members to tell
  bool tell_stop_ = false;              // GUARDED_BY(tell_mu_)
  std::thread tell_thread_;
  std::vector<std::string> warnings_;
  std::unique_ptr<AuditJobs> audit_jobs_;
};

}  // namespace backbone::server
