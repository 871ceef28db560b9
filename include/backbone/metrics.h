// Metrics: counters, gauges and histograms, rendered in the Prometheus text format (version
// 0.0.4) for GET /metrics. Debian ships no Prometheus client library for C++, so this is a
// small one: a family is a name, a help text and a type; a series is a family with label
// values.
//
// Thread-safety: thread-safe. Series are created once and live as long as the registry;
// updating one is lock-free.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace backbone {

using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void inc(double by = 1) { add(by); }
  double value() const { return v_.load(); }

 private:
  void add(double by) {
    double cur = v_.load();
    while (!v_.compare_exchange_weak(cur, cur + by)) {
    }
  }
  std::atomic<double> v_{0};
};

class Gauge {
 public:
  void set(double v) { v_.store(v); }
  double value() const { return v_.load(); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Cumulative counts per bound (and +Inf), sum, count.
  std::vector<uint64_t> buckets() const;
  double sum() const { return sum_.load(); }
  uint64_t count() const { return count_.load(); }
  const std::vector<double>& bounds() const { return bounds_; }
  // The q-quantile (0..1) estimated from the buckets (upper bound of the bucket that holds it).
  double quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

class Metrics {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  // Seconds, from 100 µs to 60 s.
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels = {});
  std::string render() const;
  // The counters and gauges of the family `name` whose labels include all of `match`, with their
  // values now (what the console's JSON stats read; nothing is created).
  std::vector<std::pair<Labels, double>> values(const std::string& name,
                                                const Labels& match = {}) const;
  // The histogram of `name` with exactly `labels`, or nullptr (nothing is created).
  const Histogram* find_histogram(const std::string& name, const Labels& labels) const;

 private:
  struct Family {
    std::string help, type;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(const std::string& name, const std::string& help, const char* type);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // GUARDED_BY(mu_)
};

}  // namespace backbone
