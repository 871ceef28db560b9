// Small helpers shared by the benchmarks: the machine's description, medians, and a temp folder
// on the same disk as the working folder (so that fsync costs what it costs in production).
#pragma once

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace backbone::bench {

inline std::string machine_description() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::ifstream mem("/proc/meminfo");
  std::string key;
  long kb = 0;
  mem >> key >> kb;
  return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores, " +
         std::to_string(kb / 1024 / 1024) + " GiB";
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace backbone::bench
