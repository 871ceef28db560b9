// What every fuzz target defines (libFuzzer's entry point). Built two ways (fuzz/CMakeLists.txt):
// with clang's -fsanitize=fuzzer for `make fuzz`, and with corpus_driver.cc, a main that feeds
// it every file of the committed corpus, for `make test`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace backbone::fuzz {

inline std::string_view text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A broken invariant found by a target: abort, so that the fuzzer keeps the input.
#define BACKBONE_FUZZ_CHECK(cond)  \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

}  // namespace backbone::fuzz
