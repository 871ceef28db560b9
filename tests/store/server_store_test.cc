// The EventStore conformance suite on PostgreSQL and MySQL/MariaDB, unchanged.
#include "store/event_store_conformance.h"
#include "store/server_harness.h"

namespace backbone::testing {

INSTANTIATE_TEST_SUITE_P(Servers, EventStoreConformance,
                         ::testing::Values(StoreBackend{"postgresql", make_postgres_harness},
                                           StoreBackend{"mysql", make_mysql_harness}),
                         [](const auto& info) { return info.param.name; });

}  // namespace backbone::testing
