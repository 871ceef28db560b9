#include "store/store_core.h"

#include "backbone/canonical_json.h"

#include <algorithm>

namespace backbone {
namespace {

// Appends a commit's refusal. (Out of line: GCC 12 sees a false "maybe uninitialized" in the
// variant when it is inlined.)
[[gnu::noinline]] void refuse_commit(std::vector<Result<std::vector<AuditEntry>>>& out, Error e) {
  out.emplace_back(std::move(e));
}

}  // namespace

Result<AuditEntry> AuditSealer::seal(const AuditDraft& draft, AuditHead& head) const {
  // Above the head's id in its first 112 bits, so that its slot bits cannot make it lower; and
  // above the entries from before chains had slots, which are slot 0's (audit_entry.h).
  const EventId floor =
      head.legacy_until && head.id < *head.legacy_until ? *head.legacy_until : head.id;
  // The second step puts its first 112 bits above those of every id the generator gave before,
  // so this process's entries stay in the order it sealed them, whatever their slots.
  EventId id = ids_.next_after(in_audit_slot(floor, 0xffff));
  id = in_audit_slot(ids_.next_after(in_audit_slot(id, 0xffff)), head.slot);
  const Timestamp created_at = std::max(clock_.now(), head.created_at);
  auto entry = seal_audit_entry(draft, id, created_at, head.chain_hash);
  if (!entry.ok()) return entry.error();
  head = head.after(*entry);
  return entry;
}

Result<std::vector<AuditEntry>> AuditSealer::seal_all(std::span<const AuditDraft> drafts,
                                                      AuditHead& head) const {
  std::vector<AuditEntry> out;
  out.reserve(drafts.size());
  for (size_t i = 0; i < drafts.size(); ++i) {
    auto entry = seal(drafts[i], head);
    if (!entry.ok()) return Error(entry.error()).at_item("audit", i);
    out.push_back(std::move(*entry));
  }
  return out;
}

Error version_conflict(const MergeCommit& c, uint64_t have) {
  return make_error(Errc::kConflict, "record " + c.record.record_type + "/" + c.record.record_id +
                                         " is at version " + std::to_string(have) + ", not " +
                                         std::to_string(c.expected_version));
}

std::vector<uint32_t> fenced_buckets(std::span<const MergeCommit* const> commits) {
  std::vector<uint32_t> out;
  for (const MergeCommit* m : commits) {
    if (m->fence) out.push_back(m->fence->bucket);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

MergePlan plan_merges(std::span<const MergeCommit* const> commits, MergeReads reads,
                      AuditHead& head, const AuditSealer& sealer, Timestamp now) {
  MergePlan plan;
  plan.outcomes.reserve(commits.size());
  std::map<std::pair<std::string, std::string>, StoredRecord> last_rows;
  auto refuse = [&](Error e) { refuse_commit(plan.outcomes, std::move(e)); };
  for (const MergeCommit* m : commits) {
    const std::string event = m->event_id.str();
    const auto key = std::pair(m->record.record_type, m->record.record_id);
    if (m->fence) {
      auto it = reads.epochs.find(m->fence->bucket);
      if (it == reads.epochs.end() || it->second != m->fence->epoch) {
        refuse(make_error(
            Errc::kFenced,
            "bucket " + std::to_string(m->fence->bucket) + " is at epoch " +
                (it == reads.epochs.end() ? std::string("none") : std::to_string(it->second)) +
                ", not " + std::to_string(m->fence->epoch) + ": another process serves it now"));
        continue;
      }
    }
    if (!m->replay) {
      auto it = reads.processed.find(event);
      if (it == reads.processed.end() || it->second) {
        refuse(make_error(Errc::kConflict,
                          "event " + event + " is already processed, or does not exist"));
        continue;
      }
    }
    const uint64_t have = reads.versions[key];
    if (have != m->expected_version) {
      refuse(version_conflict(*m, have));
      continue;
    }
    const AuditHead before = head;
    std::vector<AuditEntry> entries;
    entries.reserve(m->audit.size());
    Result<void> sealed;
    for (const AuditDraft& d : m->audit) {
      auto entry = sealer.seal(d, head);
      if (!entry.ok()) {
        sealed = entry.error();
        break;
      }
      entries.push_back(std::move(*entry));
    }
    if (!sealed.ok()) {
      head = before;
      refuse(sealed.error());
      continue;
    }
    BACKBONE_ASSERT(!(m->park && m->next));
    if (!m->replay && !m->park) {
      reads.processed[event] = true;
      plan.to_mark.push_back(m->event_id);
    }
    if (m->next) {
      StoredRecord row = *m->next;
      row.key = m->record;
      row.updated_at = entries.empty() ? now : entries.back().created_at;
      reads.versions[key] = row.version;
      last_rows[key] = std::move(row);
    }
    plan.audit.insert(plan.audit.end(), entries.begin(), entries.end());
    plan.outcomes.emplace_back(std::move(entries));
  }
  plan.records.reserve(last_rows.size());
  for (auto& [key, row] : last_rows) plan.records.push_back(std::move(row));
  return plan;
}

Result<void> check_chain_unmoved(std::span<const AuditHead> now, std::span<const AuditHead> read) {
  auto same = [](const AuditHead& a, const AuditHead& b) {
    return a.slot == b.slot && a.id == b.id && a.chain_hash == b.chain_hash;
  };
  if (!std::equal(now.begin(), now.end(), read.begin(), read.end(), same)) {
    return make_error(Errc::kConflict,
                      "the audit log moved on while the records were rebuilt (is `serve` "
                      "running?); nothing was replaced");
  }
  return {};
}

std::optional<std::string> immutable_message(const std::string& server_message) {
  for (const char* m : kImmutableMessages) {
    if (server_message.find(m) != std::string::npos) return std::string(m);
  }
  return std::nullopt;
}

Result<AdminActionDraft> checked_admin_action(const AdminActionDraft& d) {
  auto printable = [](const std::string& text) {
    return std::none_of(text.begin(), text.end(),
                        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  };
  if (d.actor.empty() || d.actor.size() > 200 || !printable(d.actor)) {
    return make_error(Errc::kInvalidArgument, "an actor is 1 to 200 printable bytes", "actor");
  }
  const bool word =
      !d.action.empty() && d.action.size() <= 64 &&
      std::all_of(d.action.begin(), d.action.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
      });
  if (!word) {
    return make_error(Errc::kInvalidArgument, "an action is 1 to 64 of [a-z0-9._]", "action");
  }
  if (d.target.size() > 200 || !printable(d.target)) {
    return make_error(Errc::kInvalidArgument, "a target is up to 200 printable bytes", "target");
  }
  AdminActionDraft out = d;
  if (d.detail) {
    auto canonical = canonicalize_json(*d.detail);
    if (!canonical.ok() || canonical->empty() || canonical->front() != '{') {
      return make_error(Errc::kInvalidArgument, "a detail is a JSON object", "detail");
    }
    out.detail = std::move(*canonical);
  }
  return out;
}

Result<std::string> admin_detail_read(const std::string& text) {
  auto canonical = canonicalize_json(text);
  if (!canonical.ok()) {
    return make_error(Errc::kDataLoss, "admin_audit: a detail that is not JSON: " + text);
  }
  return std::move(*canonical);
}

Result<void> check_policy_row(const std::string& resource, const std::string& bindings) {
  const bool printable =
      !resource.empty() && resource.size() <= 300 &&
      std::all_of(resource.begin(), resource.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (!printable) {
    return make_error(Errc::kInvalidArgument,
                      "a policy's resource is 1 to 300 printable ASCII characters", "resource");
  }
  if (bindings.size() < 2 || bindings.size() > 64 * 1024) {
    return make_error(Errc::kInvalidArgument, "a policy's bindings are 2 bytes to 64 KiB of JSON",
                      "bindings");
  }
  return {};
}

Result<void> check_policy_version(const std::string& resource, std::optional<int64_t> expected,
                                  int64_t stored) {
  if (expected && *expected != stored) {
    return make_error(Errc::kConflict, "the policy of " + resource + " is at version " +
                                           std::to_string(stored) + ", not " +
                                           std::to_string(*expected) + ": read it again");
  }
  return {};
}

Result<void> check_token_row(const StoredToken& t) {
  const bool hex =
      t.sha256.size() == 64 && std::all_of(t.sha256.begin(), t.sha256.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      });
  if (!hex)
    return make_error(Errc::kInvalidArgument, "a token's hash is 64 lowercase hex digits",
                      "sha256");
  const bool printable = !t.name.empty() && t.name.size() <= 64 &&
                         std::all_of(t.name.begin(), t.name.end(),
                                     [](char c) { return c >= 0x20 && c < 0x7f && c != ','; });
  if (!printable) {
    return make_error(Errc::kInvalidArgument,
                      "a token's name is 1 to 64 printable ASCII characters, no comma", "name");
  }
  if (t.roles.empty())
    return make_error(Errc::kInvalidArgument, "a token needs one role at least", "roles");
  // Which names are roles is the auth module's to say (auth::parse_permission); the store keeps
  // any list of lowercase words.
  for (const std::string& r : t.roles) {
    if (r.empty() || r.size() > 32 || !std::all_of(r.begin(), r.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || c == '_';
        })) {
      return make_error(Errc::kInvalidArgument, "a token's roles are lowercase words", "roles");
    }
  }
  return {};
}

std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& r : items) out += (out.empty() ? "" : ",") + r;
  return out;
}

std::vector<std::string> split_list(std::string_view items) {
  std::vector<std::string> out;
  while (!items.empty()) {
    const size_t comma = items.find(',');
    std::string_view item = items.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    out.emplace_back(item);
    items = comma == std::string_view::npos ? std::string_view() : items.substr(comma + 1);
  }
  return out;
}

const Clock& store_clock(const StoreOptions& options) {
  return options.clock ? *options.clock : SystemClock::instance();
}

EventIdGenerator& store_ids(const StoreOptions& options) {
  return options.ids ? *options.ids : EventIdGenerator::process();
}

}  // namespace backbone
