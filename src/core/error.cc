#include "backbone/error.h"

#include <string>

#include "backbone/result.h"

namespace backbone {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::kOk:
      return "ok";
    case Errc::kInvalidArgument:
      return "invalid_argument";
    case Errc::kTooLarge:
      return "too_large";
    case Errc::kUnsupportedMedia:
      return "unsupported_media_type";
    case Errc::kNotFound:
      return "not_found";
    case Errc::kAlreadyExists:
      return "already_exists";
    case Errc::kImmutable:
      return "immutable";
    case Errc::kConflict:
      return "conflict";
    case Errc::kFenced:
      return "fenced";
    case Errc::kPermissionDenied:
      return "permission_denied";
    case Errc::kUnauthenticated:
      return "unauthenticated";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kDataLoss:
      return "data_loss";
    case Errc::kInternal:
      return "internal";
  }
  return "internal";
}

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "backbone"; }
  std::string message(int ev) const override { return errc_name(static_cast<Errc>(ev)); }
};
}  // namespace

const std::error_category& backbone_category() {
  static const Category category;
  return category;
}

int http_status(Errc code) {
  switch (code) {
    case Errc::kOk:
      return 200;
    case Errc::kInvalidArgument:
      return 400;
    case Errc::kUnauthenticated:
      return 401;
    case Errc::kPermissionDenied:
      return 403;
    case Errc::kNotFound:
      return 404;
    case Errc::kAlreadyExists:
      return 409;
    case Errc::kImmutable:
      return 409;
    case Errc::kConflict:
    case Errc::kFenced:
      return 409;
    case Errc::kTooLarge:
      return 413;
    case Errc::kUnsupportedMedia:
      return 415;
    case Errc::kUnavailable:
      return 503;
    case Errc::kDataLoss:
      return 500;
    case Errc::kInternal:
      return 500;
  }
  return 500;
}

int grpc_code(Errc code) {
  switch (code) {
    case Errc::kOk:
      return 0;
    case Errc::kInvalidArgument:
      return 3;
    case Errc::kTooLarge:
    case Errc::kUnsupportedMedia:
      return 3;
    case Errc::kNotFound:
      return 5;
    case Errc::kAlreadyExists:
      return 6;
    case Errc::kPermissionDenied:
      return 7;
    case Errc::kImmutable:
    case Errc::kFenced:
      return 9;  // FAILED_PRECONDITION
    case Errc::kConflict:
      return 10;  // ABORTED
    case Errc::kUnavailable:
      return 14;
    case Errc::kDataLoss:
      return 15;
    case Errc::kUnauthenticated:
      return 16;
    case Errc::kInternal:
      return 13;
  }
  return 13;
}

int exit_code(Errc code) {
  switch (code) {
    case Errc::kOk:
      return 0;
    case Errc::kInvalidArgument:
    case Errc::kTooLarge:
    case Errc::kUnsupportedMedia:
      return 2;
    case Errc::kNotFound:
      return 3;
    case Errc::kPermissionDenied:
    case Errc::kUnauthenticated:
      return 4;
    case Errc::kImmutable:
    case Errc::kAlreadyExists:
    case Errc::kConflict:
    case Errc::kFenced:
      return 5;
    case Errc::kUnavailable:
      return 6;
    case Errc::kDataLoss:
      return 7;
    case Errc::kInternal:
      return 1;
  }
  return 1;
}

}  // namespace backbone
