#include "stress/generator.h"

#include <algorithm>
#include <set>

namespace backbone::stress {
namespace {

struct Model {
  uint64_t version = 0;                     // after every event sent so far merges
  std::map<std::string, uint64_t> changed;  // field -> version that last changed it
};

constexpr int kFields = 6;

}  // namespace

Workload::Workload(WorkloadOptions o) : o_(o) {
  std::mt19937_64 rng(o_.seed);
  std::uniform_real_distribution<double> coin(0, 1);
  std::vector<Model> models(o_.records);
  auto field = [&] { return "f" + std::to_string(rng() % kFields); };
  auto make = [&](size_t r, uint64_t base, const std::set<std::string>& fields) {
    EventDraft d;
    d.record_type = "stress";
    d.record_id = o_.record_prefix + std::to_string(r);
    d.source = "s" + std::to_string(rng() % std::max<size_t>(1, o_.sources));
    d.base_version = base;
    std::string changes = "{";
    for (const auto& f : fields) {
      changes += (changes.size() > 1 ? "," : "") + ("\"" + f + "\":" + std::to_string(rng() >> 12));
    }
    d.changes = changes + "}";
    return d;
  };
  auto normal_fields = [&] {
    std::set<std::string> fs;
    const int n = 1 + static_cast<int>(rng() % 3);
    while (static_cast<int>(fs.size()) < n) fs.insert(field());
    return fs;
  };
  auto apply = [](Model& m, const std::set<std::string>& fs) {
    ++m.version;
    for (const auto& f : fs) m.changed[f] = m.version;
  };
  while (events_.size() < o_.events) {
    if (coin(rng) < o_.poison_rate) {
      ++poison_;
      continue;
    }
    const size_t r = rng() % o_.records;
    Model& m = models[r];
    const double dice = coin(rng);
    if (m.version >= 1 && dice < o_.stale_rate) {
      // Stale base on fields no one touched at the latest version: a rebase.
      std::set<std::string> fs;
      for (int i = 0; i < kFields; ++i) {
        const std::string f = "f" + std::to_string(i);
        if (m.changed[f] < m.version && fs.size() < 2) fs.insert(f);
      }
      if (!fs.empty()) {
        events_.push_back(make(r, m.version - 1, fs));
        apply(m, fs);
        continue;
      }
    } else if (m.version >= 1 && dice < o_.stale_rate + o_.conflict_rate) {
      // Stale base on a field changed at the latest version: a conflict, rejected.
      for (const auto& [f, v] : m.changed) {
        if (v == m.version) {
          events_.push_back(make(r, m.version - 1, {f}));
          break;
        }
      }
      continue;
    } else if (dice < o_.stale_rate + o_.conflict_rate + o_.gap_rate &&
               events_.size() + 2 <= o_.events) {
      // Two events sent in swapped order: the second arrives first and waits for the first.
      const auto a_fields = normal_fields();
      EventDraft a = make(r, m.version, a_fields);
      apply(m, a_fields);
      const auto b_fields = normal_fields();
      EventDraft b = make(r, m.version, b_fields);
      apply(m, b_fields);
      events_.push_back(std::move(b));
      events_.push_back(std::move(a));
      continue;
    }
    const auto fs = normal_fields();
    events_.push_back(make(r, m.version, fs));
    apply(m, fs);
  }
}

Result<Workload::Expected> Workload::fold(const std::vector<Event>& stored,
                                          const pipeline::MergeSettings& settings) {
  Expected out;
  std::map<RecordKey, std::vector<const Event*>> parked;
  auto no_origin = [](uint64_t) -> Result<pipeline::FieldOrigin> {
    return make_error(Errc::kInternal, "the stress workload uses the reject policy");
  };
  for (const Event& e : stored) {
    const RecordKey key = e.record_key();
    pipeline::RecordState& state = out.records[key];
    auto d = pipeline::decide_merge(e, state, settings, no_origin);
    if (!d.ok()) return d.error();
    if (d->kind == pipeline::MergeDecision::Kind::kGap) {
      parked[key].push_back(&e);
      continue;
    }
    if (d->kind == pipeline::MergeDecision::Kind::kRejected) {
      ++out.rejected;
      continue;
    }
    state = d->next;
    ++out.merged;
    // Parked events that fit now, at once, as the merge stage does.
    for (bool again = true; again;) {
      again = false;
      auto& waiting = parked[key];
      for (auto it = waiting.begin(); it != waiting.end(); ++it) {
        if ((*it)->base_version() != state.version) continue;
        auto pd = pipeline::decide_merge(**it, state, settings, no_origin);
        if (!pd.ok()) return pd.error();
        waiting.erase(it);
        if (pd->kind == pipeline::MergeDecision::Kind::kRejected) {
          ++out.rejected;
        } else if (pd->kind != pipeline::MergeDecision::Kind::kGap) {
          state = pd->next;
          ++out.merged;
          again = true;
        }
        break;
      }
    }
  }
  return out;
}

}  // namespace backbone::stress
