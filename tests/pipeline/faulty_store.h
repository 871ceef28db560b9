// FaultyStore: a real EventStore with injected failures (the leveldb ErrorEnv pattern): while
// `fail_merges_for` names a record, commit_merge on that record fails with kUnavailable, as a
// store that went away would. While appends are held, append waits (to line up concurrent
// callers behind it). before_next_commit runs a step of "another process" on the real store just
// before the next commit_merges goes through, as a race would order it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "backbone/event_store.h"

namespace backbone::testing {

class FaultyStore final : public EventStore {
 public:
  explicit FaultyStore(std::unique_ptr<EventStore> real) : real_(std::move(real)) {}

  void fail_merges_for(std::optional<RecordKey> record) {
    std::lock_guard lk(mu_);
    failing_ = std::move(record);
  }
  int injected() const { return injected_; }
  void hold_appends(bool hold) {
    {
      std::lock_guard lk(mu_);
      held_ = hold;
    }
    released_.notify_all();
  }
  int appends_waiting() const { return appends_waiting_; }
  void before_next_commit(std::function<void(EventStore& real)> step) {
    std::lock_guard lk(mu_);
    before_commit_ = std::move(step);
  }

  Result<int> migrate() override { return real_->migrate(); }
  Result<int> schema_version() override { return real_->schema_version(); }
  Result<std::vector<AppendOutcome>> append(std::span<const Event> e) override {
    {
      std::unique_lock lk(mu_);
      ++appends_waiting_;
      released_.wait(lk, [&] { return !held_; });
      --appends_waiting_;
    }
    return real_->append(e);
  }
  Result<StoredEvent> get(const EventId& id) override { return real_->get(id); }
  Result<std::vector<StoredEvent>> history(const RecordKey& r) override {
    return real_->history(r);
  }
  Result<std::vector<StoredEvent>> outbox(Timestamp by, size_t n) override {
    return real_->outbox(by, n);
  }
  Result<void> published(std::span<const EventId> ids) override { return real_->published(ids); }
  Result<std::vector<StoredEvent>> unprocessed_retrying(size_t n,
                                                        std::optional<EventCursor> a) override {
    return real_->unprocessed_retrying(n, a);
  }
  Result<std::vector<StoredEvent>> unprocessed(size_t n, std::optional<EventCursor> a) override {
    return real_->unprocessed(n, a);
  }
  Result<bool> mark_processed(const EventId& id) override { return real_->mark_processed(id); }
  Result<std::optional<StoredRecord>> get_record(const RecordKey& r) override {
    return real_->get_record(r);
  }
  Result<std::vector<StoredRecord>> scan_records(std::optional<RecordKey> a, size_t n) override {
    return real_->scan_records(a, n);
  }
  Result<std::vector<StoredEvent>> unprocessed_based_on(const RecordKey& r, uint64_t base,
                                                        size_t n) override {
    return real_->unprocessed_based_on(r, base, n);
  }
  std::vector<Result<std::vector<AuditEntry>>> commit_merges(
      std::span<const MergeCommit> commits) override {
    std::function<void(EventStore&)> before;
    {
      std::lock_guard lk(mu_);
      before.swap(before_commit_);
    }
    if (before) before(*real_);
    std::vector<Result<std::vector<AuditEntry>>> out(
        commits.size(), make_error(Errc::kUnavailable, "injected: the store is unavailable"));
    std::vector<MergeCommit> pass;
    std::vector<size_t> where;
    {
      std::lock_guard lk(mu_);
      for (size_t i = 0; i < commits.size(); ++i) {
        if (failing_ && *failing_ == commits[i].record) {
          ++injected_;
          continue;
        }
        pass.push_back(commits[i]);
        where.push_back(i);
      }
    }
    auto real = real_->commit_merges(pass);
    for (size_t i = 0; i < real.size(); ++i) out[where[i]] = std::move(real[i]);
    return out;
  }
  Result<void> replace_records(std::span<const StoredRecord> rows,
                               std::span<const AuditHead> heads) override {
    return real_->replace_records(rows, heads);
  }
  Result<uint32_t> init_buckets(uint32_t n) override { return real_->init_buckets(n); }
  Result<ClusterView> beat(const ClusterMember& m) override { return real_->beat(m); }
  Result<ClusterView> cluster_view() override { return real_->cluster_view(); }
  Result<std::vector<std::optional<uint64_t>>> change_leases(
      const std::string& member, std::span<const LeaseChange> c) override {
    return real_->change_leases(member, c);
  }
  Result<void> forget_members(std::span<const std::string> ids) override {
    return real_->forget_members(ids);
  }
  Result<std::vector<AuditEntry>> append_audit(std::span<const AuditDraft> d) override {
    return real_->append_audit(d);
  }
  Result<std::vector<AuditEntry>> audit_for_event(const EventId& id) override {
    return real_->audit_for_event(id);
  }
  Result<std::vector<AuditEntry>> audit_for_record(const RecordKey& r) override {
    return real_->audit_for_record(r);
  }
  Result<std::vector<AuditEntry>> audit_by_fingerprint(const std::string& f) override {
    return real_->audit_by_fingerprint(f);
  }
  Result<std::vector<AuditHead>> audit_heads() override { return real_->audit_heads(); }
  Result<void> add_token(const StoredToken& t) override { return real_->add_token(t); }
  Result<std::vector<StoredToken>> tokens() override { return real_->tokens(); }
  Result<bool> revoke_token(const std::string& h, Timestamp at) override {
    return real_->revoke_token(h, at);
  }
  Result<void> note_token_uses(std::span<const TokenUse> u) override {
    return real_->note_token_uses(u);
  }
  Result<std::vector<StoredPolicy>> iam_policies() override { return real_->iam_policies(); }
  Result<StoredPolicy> set_iam_policy(const std::string& r, const std::string& b,
                                      std::optional<int64_t> v, Timestamp at) override {
    return real_->set_iam_policy(r, b, v, at);
  }
  Result<AdminAction> append_admin_action(const AdminActionDraft& d) override {
    return real_->append_admin_action(d);
  }
  Result<std::vector<AdminAction>> admin_actions(std::optional<EventId> a, size_t n) override {
    return real_->admin_actions(a, n);
  }
  Result<std::vector<AuditEntry>> scan_audit(std::optional<EventId> a, size_t n) override {
    return real_->scan_audit(a, n);
  }

 private:
  std::unique_ptr<EventStore> real_;
  std::mutex mu_;
  std::optional<RecordKey> failing_;
  std::function<void(EventStore&)> before_commit_;  // GUARDED_BY(mu_)
  bool held_ = false;                               // GUARDED_BY(mu_)
  std::condition_variable released_;
  std::atomic<int> appends_waiting_{0};
  std::atomic<int> injected_{0};
};

}  // namespace backbone::testing
