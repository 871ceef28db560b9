// io_error: the error of a failed file call of the embedded broker, with errno's text.
//
// Thread-safety: reads errno of the calling thread.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "backbone/result.h"

namespace backbone::embedded {

// kUnavailable "<what> <path>: <strerror(errno)>". Call it right after the failed call.
inline Error io_error(const std::string& what, const std::string& path) {
  return make_error(Errc::kUnavailable, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace backbone::embedded
