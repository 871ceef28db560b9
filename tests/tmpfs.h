// A small tmpfs for tests of a full disk: mounted on a fresh temporary folder (mounting needs
// root; a test skips when it cannot), and unmounted when the object goes.
//
// Thread-safety: not thread-safe; one test thread uses it.
#pragma once

#include <cstdint>
#include <string>

#include "store/sqlite_harness.h"

namespace backbone::testing {

class Tmpfs {
 public:
  explicit Tmpfs(uint64_t bytes);
  ~Tmpfs();
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  // Whether it is mounted; why not, when it is not.
  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }
  std::string file(const std::string& name) const { return dir_.file(name); }

  // Bytes free now.
  uint64_t free_bytes() const;
  // Writes the file "filler" until at most `leave` bytes are free; false when it cannot.
  bool fill(uint64_t leave);
  // Deletes the filler: the space comes back.
  void free_filler();

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string why_not_;
};

}  // namespace backbone::testing
