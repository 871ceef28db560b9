// A stress workload through `serve`'s App on a manual clock, until it settles; then an operator
// resolves every dead letter (accepting some conflicts, discarding the rest, and discarding the
// poison messages), and every subscription of the environment must end with nothing waiting and
// nothing in flight: each of them has a consumer (issue 20, doc/pipeline.md "The watchers").
#include <gtest/gtest.h>

#include "backbone/topology.h"
#include "server/app.h"
#include "server/local_config.h"
#include "stress/generator.h"

namespace backbone::testing {
namespace {

class Settle : public ::testing::Test {
 protected:
  void SetUp() override {
    app_ = open_local_app(dir_, clock_, {"sandbox"});
    ASSERT_NE(app_, nullptr);
    pipeline_ = *app_->pipeline("sandbox");
  }
  // Runs the stages and the watchers until a round settles nothing (bounded).
  void settle() {
    for (int round = 0; round < 500; ++round) {
      auto n = pipeline_->step();
      ASSERT_TRUE(n.ok()) << n.error().describe();
      auto w = pipeline_->step_watchers();
      ASSERT_TRUE(w.ok()) << w.error().describe();
      if (*n == 0 && *w == 0) return;
    }
    FAIL() << "the pipeline did not settle in 500 rounds";
  }
  // The sync subscription's external consumer: pulls and acks all it is given.
  size_t consume_sync() {
    const std::string sync = app_->topology().subscription_for("sync", "sandbox")->name;
    size_t n = 0;
    for (;;) {
      auto got = app_->consumer_broker().pull(sync, 500);
      EXPECT_TRUE(got.ok());
      if (!got.ok() || got->empty()) return n;
      std::vector<std::string> ids;
      for (const auto& m : *got) ids.push_back(m.ack_id);
      EXPECT_TRUE(app_->consumer_broker().ack(sync, ids).ok());
      n += ids.size();
    }
  }
  // Every subscription's figures: name -> undelivered + in flight.
  std::map<std::string, uint64_t> backlogs() {
    std::map<std::string, uint64_t> out;
    for (const SubscriptionConfig& s : app_->topology().subscriptions("sandbox")) {
      auto st = app_->broker().stats(s.name);
      EXPECT_TRUE(st.ok() && st->undelivered && st->in_flight) << s.name;
      out[s.name] = st.ok() ? st->undelivered.value_or(99) + st->in_flight.value_or(99) : 99;
    }
    return out;
  }

  ManualClock clock_;
  TempDir dir_;
  std::unique_ptr<server::App> app_;
  pipeline::EnvironmentPipeline* pipeline_ = nullptr;
};

TEST_F(Settle, AfterAStressRunAndEveryDeadLetterResolvedNothingWaitsAnywhere) {
  stress::WorkloadOptions wo;
  wo.events = 1500;
  wo.records = 30;
  wo.conflict_rate = 0.04;
  wo.poison_rate = 0.004;
  wo.seed = 11;
  stress::Workload workload(wo);
  ASSERT_GT(workload.poison(), 0u);
  EnvPublisher poison(app_->broker(), app_->topology(), "sandbox", app_->config().environments);
  const auto& drafts = workload.events();
  size_t poison_sent = 0;
  for (size_t i = 0; i < drafts.size(); i += 100) {
    std::vector<EventDraft> batch(
        drafts.begin() + static_cast<long>(i),
        drafts.begin() + static_cast<long>(std::min(i + 100, drafts.size())));
    for (EventDraft& d : batch) {
      clock_.advance_micros(10);
      d.timestamp = clock_.now();
    }
    ASSERT_TRUE(pipeline_->ingest(batch).ok());
    const size_t due = workload.poison() * (i + batch.size()) / drafts.size();
    for (; poison_sent < due; ++poison_sent) {
      ASSERT_TRUE(poison
                      .publish_record(TopicFamily::kRaw, {"stress", "poison"},
                                      "not an event " + std::to_string(poison_sent))
                      .ok());
    }
    settle();
  }
  // Gaps wait for their retry's backoff: let the clock run through the retry span.
  for (int i = 0; i < 40; ++i) {
    clock_.advance_micros(60 * kSecond);
    settle();
  }
  EXPECT_GT(consume_sync(), 0u);

  // Before any repair: the open dead letters and the poison wait in the inspect subscription.
  auto open = pipeline_->dlq_list();
  ASSERT_TRUE(open.ok());
  ASSERT_GT(open->size(), 2u);
  const std::string inspect = app_->topology().subscription_for("inspect", "sandbox")->name;
  EXPECT_EQ(backlogs()[inspect], open->size() + workload.poison());
  const auto poison_held = pipeline_->dlq_poison();
  ASSERT_EQ(poison_held.size(), workload.poison());
  EXPECT_EQ(poison_held.front().data.rfind("not an event ", 0), 0u);

  // The operator: accepts every other conflict, discards the rest and the poison.
  using R = pipeline::EnvironmentPipeline::DlqResolution;
  for (size_t i = 0; i < open->size(); ++i) {
    const EventId id = (*open)[i].event.event.id();
    ASSERT_TRUE(pipeline_->dlq_resolve(id, i % 2 ? R::kAccept : R::kDiscard, "ops", "").ok());
  }
  for (const auto& p : poison_held) {
    ASSERT_TRUE(app_->record_admin("sandbox", "ops", pipeline::DlqInspector::kDiscardPoison,
                                   p.message_id, std::nullopt, "")
                    .ok());
  }
  settle();
  EXPECT_GT(consume_sync(), 0u);  // the accepted changes made versions
  // The inspector looks again after its recheck interval.
  clock_.advance_micros(pipeline::DlqInspector::kRecheckUs);
  settle();
  consume_sync();

  EXPECT_TRUE(pipeline_->dlq_list()->empty());
  EXPECT_TRUE(pipeline_->dlq_poison().empty());
  for (const auto& [name, waiting] : backlogs()) EXPECT_EQ(waiting, 0u) << name;
  // And nothing was lost on the way: every stored event was processed.
  auto unprocessed = pipeline_->merge_store().unprocessed(10, std::nullopt);
  ASSERT_TRUE(unprocessed.ok());
  EXPECT_TRUE(unprocessed->empty());
}

}  // namespace
}  // namespace backbone::testing
