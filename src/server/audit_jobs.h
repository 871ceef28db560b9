// AuditJobs: the audit verifications that the HTTP API runs in the background (POST
// /v1/envs/{env}/audit:verify), one at a time per environment, each on a thread and a store
// connection of its own, so that a client (the console's progress bar) can follow it with GET.
//
// Progress is the place of the last verified entry's id between the first entry and the latest
// recorded chain head (ids are UUIDv7: they grow with time), so it needs no count of the log.
//
// Thread-safety: thread-safe. The destructor stops and joins what runs.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <thread>

#include "backbone/clock.h"
#include "backbone/event_store.h"

namespace backbone::server {

struct AuditJobStatus {
  bool running = false;
  uint64_t entries_checked = 0;
  double progress = 0;  // 0..1
  Timestamp started_at, finished_at;
  std::string started_by;                   // who asked (auth::Principal::actor)
  std::optional<AuditVerifyReport> report;  // when it finished
  std::optional<Error> error;               // when it could not finish
};

class AuditJobs {
 public:
  using OpenStore = std::function<Result<std::unique_ptr<EventStore>>()>;
  explicit AuditJobs(const Clock& clock) : clock_(clock) {}
  ~AuditJobs();
  AuditJobs(const AuditJobs&) = delete;
  AuditJobs& operator=(const AuditJobs&) = delete;

  // Starts a verification of `env` on a store that `open` opens, unless one runs; returns its
  // status (the running one's when one ran already).
  AuditJobStatus start(const std::string& env, OpenStore open, const std::string& actor);
  // The last verification of `env`, if any since this process started.
  std::optional<AuditJobStatus> status(const std::string& env) const;
  // Stops every verification that runs, and waits for them.
  void stop();

 private:
  struct Job {
    AuditJobStatus status;  // GUARDED_BY(mu_)
    std::thread thread;
  };
  void run(Job* job, OpenStore open);
  const Clock& clock_;
  mutable std::mutex mu_;
  bool stopping_ = false;                             // GUARDED_BY(mu_)
  std::map<std::string, std::unique_ptr<Job>> jobs_;  // GUARDED_BY(mu_)
};

// {"ok","entries_checked","heads":[{"slot","id","chain_hash"}],"first_bad_entry"?,"position"?,
//  "problem"?}: what `audit verify --json` prints and the job's status carries.
nlohmann::json audit_report_to_json(const AuditVerifyReport& r);

// {"running","entries_checked","progress","started_at","started_by","finished_at"?,"ok"?,
//  "first_bad_entry"?,"position"?,"problem"?,"heads"?,"error"?}
std::string audit_job_to_json(const std::string& env, const AuditJobStatus& s);

}  // namespace backbone::server
