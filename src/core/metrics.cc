#include "backbone/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "backbone/result.h"

namespace backbone {
namespace {

std::string number(double v) {
  if (std::isnan(v)) return "NaN";  // a figure that is not known
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string label_text(const Labels& labels, const std::string& extra_key = "",
                       const std::string& extra_value = "") {
  std::string out;
  for (const auto& [k, v] : labels) {
    out += (out.empty() ? "" : ",") + k + "=\"" + escape(v) + "\"";
  }
  if (!extra_key.empty()) {
    out += (out.empty() ? "" : ",") + extra_key + "=\"" + extra_value + "\"";
  }
  return out.empty() ? "" : "{" + out + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::observe(double v) {
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1);
  count_.fetch_add(1);
  double cur = sum_.load();
  while (!sum_.compare_exchange_weak(cur, cur + v)) {
  }
}

std::vector<uint64_t> Histogram::buckets() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) out[i] = running += counts_[i].load();
  return out;
}

double Histogram::quantile(double q) const {
  const auto b = buckets();
  const uint64_t total = b.back();
  if (total == 0) return 0;
  const double want = q * static_cast<double>(total);
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (static_cast<double>(b[i]) >= want) return bounds_[i];
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

Metrics::Family& Metrics::family(const std::string& name, const std::string& help,
                                 const char* type) {
  Family& f = families_[name];
  if (f.type.empty()) {
    f.help = help;
    f.type = type;
  }
  BACKBONE_ASSERT(f.type == type);
  return f;
}

Counter& Metrics::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& slot = family(name, help, "counter").counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& slot = family(name, help, "gauge").gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                              const Labels& labels) {
  std::lock_guard lk(mu_);
  auto& slot = family(name, help, "histogram").histograms[labels];
  if (!slot) {
    slot = std::make_unique<Histogram>(std::vector<double>{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                           0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1, 2.5, 5, 10, 30, 60});
  }
  return *slot;
}

std::vector<std::pair<Labels, double>> Metrics::values(const std::string& name,
                                                       const Labels& match) const {
  std::vector<std::pair<Labels, double>> out;
  std::lock_guard lk(mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return out;
  auto matches = [&](const Labels& labels) {
    for (const auto& [k, v] : match) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
    return true;
  };
  for (const auto& [labels, c] : f->second.counters) {
    if (matches(labels)) out.emplace_back(labels, c->value());
  }
  for (const auto& [labels, g] : f->second.gauges) {
    if (matches(labels)) out.emplace_back(labels, g->value());
  }
  return out;
}

const Histogram* Metrics::find_histogram(const std::string& name, const Labels& labels) const {
  std::lock_guard lk(mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return nullptr;
  auto h = f->second.histograms.find(labels);
  return h == f->second.histograms.end() ? nullptr : h->second.get();
}

std::string Metrics::render() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters)
      out += name + label_text(labels) + " " + number(c->value()) + "\n";
    for (const auto& [labels, g] : f.gauges)
      out += name + label_text(labels) + " " + number(g->value()) + "\n";
    for (const auto& [labels, h] : f.histograms) {
      const auto b = h->buckets();
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        out += name + "_bucket" + label_text(labels, "le", number(h->bounds()[i])) + " " +
               std::to_string(b[i]) + "\n";
      }
      out += name + "_bucket" + label_text(labels, "le", "+Inf") + " " + std::to_string(b.back()) +
             "\n";
      out += name + "_sum" + label_text(labels) + " " + number(h->sum()) + "\n";
      out += name + "_count" + label_text(labels) + " " + std::to_string(h->count()) + "\n";
    }
  }
  return out;
}

}  // namespace backbone
