// The one place where typed error codes map to the outside world: HTTP status codes, gRPC
// status codes and CLI exit codes. Every front end uses these functions and nothing else.
//
// Thread-safety: pure functions.
#pragma once

#include "backbone/result.h"

namespace backbone {

int http_status(Errc code);
// google.rpc.Code numbers (INVALID_ARGUMENT = 3, NOT_FOUND = 5, ...).
int grpc_code(Errc code);
// Process exit status: 0 for kOk; 2 for bad input; 3 not found; 4 permission; 5 immutable or
// conflict; 6 unavailable; 7 data loss; 1 anything else.
int exit_code(Errc code);

}  // namespace backbone
