// ConnectionPool: up to `max` connections of one login, made on demand and reused. A caller
// leases one for a unit of work; a connection that was lost (SqlConnection::healthy) is dropped
// when its lease ends instead of being reused, so the next lease connects afresh.
//
// Thread-safety: thread-safe. A Lease is used by one thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "store/sql/sql_connection.h"

namespace backbone::sql {

class ConnectionPool {
 public:
  using Connect = std::function<Result<std::unique_ptr<SqlConnection>>()>;
  ConnectionPool(Connect connect, size_t max);

  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<SqlConnection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    SqlConnection& operator*() const { return *conn_; }
    SqlConnection* operator->() const { return conn_.get(); }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<SqlConnection> conn_;
  };

  // An idle connection, or a new one while fewer than `max` exist; otherwise waits for one.
  // Returns the connect error (kUnavailable, kPermissionDenied) when a new one cannot be made.
  Result<Lease> acquire();

 private:
  void release(std::unique_ptr<SqlConnection> conn);

  Connect connect_;
  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SqlConnection>> idle_;  // GUARDED_BY(mu_)
  size_t open_ = 0;                                   // GUARDED_BY(mu_): leased + idle
};

}  // namespace backbone::sql
