#include "backbone/result.h"

#include <gtest/gtest.h>

#include "backbone/error.h"

namespace backbone {
namespace {

Result<int> half(int x) {
  if (x % 2) return make_error(Errc::kInvalidArgument, "odd", "x");
  return x / 2;
}

Result<int> quarter(int x) {
  auto h = half(x);
  BACKBONE_TRY(h);
  return half(*h);
}

TEST(Result, HoldsAValueOrAnError) {
  auto ok = half(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 4);
  auto bad = half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().describe(), "x: odd");
}

TEST(Result, TryPropagatesTheFirstError) {
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_EQ(quarter(6).error().message, "odd");  // 6/2 = 3 is odd
  EXPECT_EQ(quarter(5).code(), Errc::kInvalidArgument);
}

TEST(Result, ErrorCodesConvertToStdErrorCode) {
  std::error_code ec = Errc::kNotFound;
  EXPECT_EQ(ec.category().name(), std::string("backbone"));
  EXPECT_EQ(ec.message(), "not_found");
}

TEST(ErrorMapping, EveryCodeMapsToTheDocumentedStatus) {
  EXPECT_EQ(http_status(Errc::kInvalidArgument), 400);
  EXPECT_EQ(http_status(Errc::kUnauthenticated), 401);
  EXPECT_EQ(http_status(Errc::kPermissionDenied), 403);
  EXPECT_EQ(http_status(Errc::kNotFound), 404);
  EXPECT_EQ(http_status(Errc::kImmutable), 409);
  EXPECT_EQ(http_status(Errc::kTooLarge), 413);
  EXPECT_EQ(grpc_code(Errc::kPermissionDenied), 7);
  EXPECT_EQ(grpc_code(Errc::kUnauthenticated), 16);
  EXPECT_EQ(grpc_code(Errc::kNotFound), 5);
  EXPECT_EQ(exit_code(Errc::kOk), 0);
  EXPECT_EQ(exit_code(Errc::kInvalidArgument), 2);
  EXPECT_NE(exit_code(Errc::kInternal), 0);
}

}  // namespace
}  // namespace backbone
