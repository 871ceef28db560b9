#include "store/sql/connection_pool.h"

namespace backbone::sql {

ConnectionPool::ConnectionPool(Connect connect, size_t max)
    : connect_(std::move(connect)), max_(max == 0 ? 1 : max) {}

ConnectionPool::Lease::~Lease() {
  if (conn_) pool_->release(std::move(conn_));
}

Result<ConnectionPool::Lease> ConnectionPool::acquire() {
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !idle_.empty() || open_ < max_; });
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;  // reserve the slot, connect outside the lock
  }
  auto conn = connect_();
  if (!conn.ok()) {
    std::lock_guard lk(mu_);
    --open_;
    cv_.notify_one();
    return conn.error();
  }
  return Lease(this, std::move(*conn));
}

void ConnectionPool::release(std::unique_ptr<SqlConnection> conn) {
  std::lock_guard lk(mu_);
  if (conn->healthy()) {
    idle_.push_back(std::move(conn));
  } else {
    // A lost connection most often means the server went away: the idle ones are gone too.
    open_ -= 1 + idle_.size();
    idle_.clear();
  }
  cv_.notify_all();
}

}  // namespace backbone::sql
