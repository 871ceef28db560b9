// The EventStore conformance suite, written once and instantiated for every backend
// (STYLE.md, habit 1). A backend provides a StoreHarness: a fresh, empty store per test, and a
// way to run raw SQL as a role, so that the database's own refusals (triggers, grants) are
// tested and not only the library's.
//
// To instantiate:
//   INSTANTIATE_TEST_SUITE_P(Sqlite, EventStoreConformance,
//                            ::testing::Values(StoreBackend{"sqlite", make_harness}));
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "backbone/event_store.h"

namespace backbone::testing {

class StoreHarness {
 public:
  virtual ~StoreHarness() = default;
  // The URL of a store that exists for this harness alone and has not been migrated. A backend
  // whose server is not running makes no harness (nullptr): its tests skip, or fail when
  // BACKBONE_TEST_SERVERS_REQUIRED=1 (as `make test` sets).
  virtual std::string url() = 0;
  // Runs `sql` connected as `role`. Trigger refusals come back as kImmutable with the trigger's
  // message; privilege refusals as kPermissionDenied.
  virtual Result<void> raw_sql(Role role, const std::string& sql) = 0;
  // Runs a query that returns one integer, connected as `role`.
  virtual Result<int64_t> raw_query_int(Role role, const std::string& sql) = 0;
};

struct StoreBackend {
  std::string name;
  std::function<std::unique_ptr<StoreHarness>()> make;
};

inline void PrintTo(const StoreBackend& b, std::ostream* os) { *os << b.name; }

class EventStoreConformance : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override;
  // Opens the harness's store as `role`, on this test's clock and id generator.
  std::unique_ptr<EventStore> open(Role role, const Clock* clock = nullptr,
                                   EventIdGenerator* ids = nullptr);
  // A valid event for record `record_id`, with `changes` and `base_version` (and `id`, when
  // given).
  Event event(const std::string& record_id, const std::string& changes, uint64_t base_version = 0,
              std::optional<EventId> id = std::nullopt);
  // SELECT COUNT(*) FROM `table`, as the migrator (-1 on failure, which is also reported).
  int64_t rows(const char* table);

  ManualClock clock_{Timestamp::from_millis(1'795'838'706'000)};
  EventIdGenerator ids_{clock_, 77};
  std::unique_ptr<StoreHarness> harness_;
  std::unique_ptr<EventStore> store_;  // migrated, as migrator
};

}  // namespace backbone::testing
