// A database server restarted in the middle of appends (a clean shutdown, then a SIGKILL) is
// survived: the appender reconnects and retries, and every event is stored exactly once, with
// one `ingested` entry each and an intact audit chain. Each backend gets its own private server
// (scripts/test-db.sh), so that the shared test servers are not disturbed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "backbone/event_store.h"
#include "store/server_harness.h"
#include "store/sqlite_harness.h"
#include "test_servers.h"

namespace backbone::testing {
namespace {

std::string test_db(const std::string& args) { return run_test_script("test-db.sh", args); }

class ServerRestart : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    BACKBONE_REQUIRE_TEST_SERVER(GetParam() == "postgres" ? "postgresql" : "mysql");
    dir_ = std::make_unique<TempDir>();
    std::filesystem::permissions(dir_->path(), std::filesystem::perms::all);
    data_ = dir_->file("server");
    port_ = std::to_string(free_loopback_port());
    admin_url_ = test_db("start " + GetParam() + " " + data_ + " " + port_);
    ASSERT_FALSE(admin_url_.empty());
  }
  void TearDown() override {
    harness_.reset();
    if (!data_.empty()) test_db("stop " + GetParam() + " " + data_);
  }

  std::unique_ptr<TempDir> dir_;
  std::string data_, port_, admin_url_;
  std::unique_ptr<ServerHarness> harness_;
};

TEST_P(ServerRestart, AppendsSurviveAShutdownAndACrashWithNothingLostOrDoubled) {
  harness_ = std::make_unique<ServerHarness>(admin_url_);
  StoreOptions o;
  o.url = harness_->url() + "?reconnect_timeout_ms=60000";
  o.role = Role::kMigrator;
  auto migrator = EventStore::open(o);
  ASSERT_TRUE(migrator.ok()) << migrator.error().describe();
  ASSERT_TRUE((*migrator)->migrate().ok());
  o.role = Role::kSyncWorker;
  auto sync = EventStore::open(o);
  ASSERT_TRUE(sync.ok()) << sync.error().describe();

  std::atomic<bool> stop{false};
  std::atomic<int> batches{0};
  std::vector<Error> failures;
  std::thread appender([&] {
    int n = 0;
    while (!stop.load()) {
      std::vector<Event> batch;
      for (int i = 0; i < 10; ++i, ++n) {
        EventDraft d;
        d.record_type = "contact";
        d.record_id = std::to_string(n % 50);
        d.source = "crm";
        d.changes = R"({"n":)" + std::to_string(n) + "}";
        batch.push_back(*Event::create(d, EventIdGenerator::process(), SystemClock::instance()));
      }
      auto r = (*sync)->append(batch);
      if (!r.ok()) {
        failures.push_back(r.error());
        return;
      }
      ++batches;
    }
  });
  auto wait_for = [&](int more) {
    const int target = batches.load() + more;
    for (int i = 0; i < 3000 && batches.load() < target && failures.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  wait_for(20);
  test_db("stop " + GetParam() + " " + data_);  // a clean shutdown under load
  test_db("start " + GetParam() + " " + data_ + " " + port_);
  wait_for(20);
  test_db("kill " + GetParam() + " " + data_);  // a crash under load
  test_db("start " + GetParam() + " " + data_ + " " + port_);
  wait_for(20);
  stop = true;
  appender.join();
  ASSERT_TRUE(failures.empty()) << failures.front().describe();

  const int64_t want = int64_t{batches.load()} * 10;
  EXPECT_GE(want, 600);
  EXPECT_EQ(*harness_->raw_query_int(Role::kMigrator, "SELECT COUNT(*) FROM events"), want);
  EXPECT_EQ(*harness_->raw_query_int(
                Role::kMigrator, "SELECT COUNT(*) FROM event_audit_log WHERE action = 'ingested'"),
            want);
  EXPECT_EQ(*harness_->raw_query_int(Role::kMigrator,
                                     "SELECT COUNT(*) FROM event_audit_log WHERE action <> "
                                     "'ingested'"),
            0);
  auto report = verify_audit_chain(**migrator);
  ASSERT_TRUE(report.ok()) << report.error().describe();
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->entries_checked, static_cast<uint64_t>(want));
}

INSTANTIATE_TEST_SUITE_P(Servers, ServerRestart, ::testing::Values("postgres", "mariadb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace backbone::testing
