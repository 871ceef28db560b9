// file_io: the embedded broker's file calls, each returning a Result whose error carries errno's
// text, and says plainly when the disk is full.
//
// Thread-safety: free functions; each reads errno of the calling thread.
#pragma once

#include <sys/types.h>

#include <string>

#include "backbone/result.h"

namespace backbone::embedded {

// kUnavailable "<what> <path>: <strerror(errno)>", prefixed with "the disk is full: " for
// ENOSPC and EDQUOT. Call it right after the failed call.
Error io_error(const std::string& what, const std::string& path);

// The whole file.
Result<std::string> read_file(const std::string& path);
// Writes all of `bytes` at `position` of `fd` (the file `path`, for errors).
Result<void> write_at(int fd, const std::string& bytes, off_t position, const std::string& path);
// fsyncs a folder, so that the files created or renamed in it survive a crash (best effort).
void sync_dir(const std::string& dir);
// Replaces `path` with `contents` durably: a temporary file beside it, fsync'd, renamed over it,
// and the folder synced. On failure `path` is unchanged and the temporary file is gone.
Result<void> replace_file(const std::string& path, const std::string& contents);

}  // namespace backbone::embedded
