#include "server/audit_jobs.h"

#include <nlohmann/json.hpp>

namespace backbone::server {

AuditJobs::~AuditJobs() { stop(); }

AuditJobStatus AuditJobs::start(const std::string& env, OpenStore open, const std::string& actor) {
  std::lock_guard lk(mu_);
  auto& slot = jobs_[env];
  if (slot && slot->status.running) return slot->status;
  // A finished job's thread has nothing left to do after its last status write (under mu_).
  if (slot && slot->thread.joinable()) slot->thread.join();
  slot = std::make_unique<Job>();
  slot->status.running = !stopping_;
  slot->status.started_at = clock_.now();
  slot->status.started_by = actor;
  if (stopping_) {
    slot->status.error = make_error(Errc::kUnavailable, "the server is stopping");
    return slot->status;
  }
  Job* job = slot.get();
  job->thread = std::thread([this, job, open = std::move(open)] { run(job, open); });
  return job->status;
}

void AuditJobs::run(Job* job, OpenStore open) {
  auto finish = [&](std::optional<AuditVerifyReport> report, std::optional<Error> error) {
    std::lock_guard lk(mu_);
    job->status.running = false;
    job->status.finished_at = clock_.now();
    if (report) job->status.entries_checked = report->entries_checked;
    job->status.progress = report && report->ok ? 1.0 : job->status.progress;
    job->status.report = std::move(report);
    job->status.error = std::move(error);
  };
  auto store = open();
  if (!store.ok()) return finish(std::nullopt, store.error());
  // The span of ids to cover: from the first entry to the latest head.
  int64_t first_ms = 0, last_ms = 0;
  auto first = (*store)->scan_audit(std::nullopt, 1);
  auto heads = (*store)->audit_heads();
  if (first.ok() && !first->empty()) first_ms = first->front().id.unix_millis();
  if (heads.ok()) {
    for (const AuditHead& h : *heads) {
      if (!h.empty()) last_ms = std::max(last_ms, h.id.unix_millis());
    }
  }
  auto report = verify_audit_chain(**store, [&](const AuditVerifyReport& r, const EventId& last) {
    std::lock_guard lk(mu_);
    job->status.entries_checked = r.entries_checked;
    if (last_ms > first_ms) {
      const double p = static_cast<double>(last.unix_millis() - first_ms) /
                       static_cast<double>(last_ms - first_ms);
      job->status.progress = std::clamp(p, 0.0, 0.99);
    }
    return !stopping_;
  });
  if (!report.ok()) return finish(std::nullopt, report.error());
  finish(std::move(*report), std::nullopt);
}

std::optional<AuditJobStatus> AuditJobs::status(const std::string& env) const {
  std::lock_guard lk(mu_);
  auto it = jobs_.find(env);
  if (it == jobs_.end()) return std::nullopt;
  return it->second->status;
}

void AuditJobs::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    for (auto& [env, job] : jobs_) {
      if (job->thread.joinable()) threads.push_back(std::move(job->thread));
    }
  }
  for (auto& t : threads) t.join();
}

nlohmann::json audit_report_to_json(const AuditVerifyReport& r) {
  nlohmann::json j = {{"ok", r.ok}, {"entries_checked", r.entries_checked}};
  // The heads checked against, to keep elsewhere: a later run that finds other heads for the
  // same rows shows a rewrite (doc/audit_chain.md).
  nlohmann::json heads = nlohmann::json::array();
  for (const AuditHead& h : r.heads) {
    if (!h.empty()) {
      heads.push_back({{"slot", h.slot}, {"id", h.id.str()}, {"chain_hash", h.chain_hash}});
    }
  }
  j["heads"] = std::move(heads);
  if (!r.ok) {
    j["first_bad_entry"] = r.first_bad_entry->str();
    j["position"] = r.first_bad_position;
    j["problem"] = r.problem;
  }
  return j;
}

std::string audit_job_to_json(const std::string& env, const AuditJobStatus& s) {
  nlohmann::json j = {{"env", env},
                      {"running", s.running},
                      {"started", true},
                      {"entries_checked", s.entries_checked},
                      {"progress", s.progress},
                      {"started_at", s.started_at.to_rfc3339()},
                      {"started_by", s.started_by}};
  if (!s.running) j["finished_at"] = s.finished_at.to_rfc3339();
  if (s.report) j.update(audit_report_to_json(*s.report));
  if (s.error) j["error"] = {{"code", errc_name(s.error->code)}, {"message", s.error->message}};
  return j.dump();
}

}  // namespace backbone::server
