#include "backbone/sha256.h"

#include <openssl/evp.h>

#include <memory>

#include "backbone/result.h"

namespace backbone {
namespace {

const EVP_MD* sha256_md() {
  // Fetched once: an implicit fetch by EVP_sha256() on every call costs a lock in OpenSSL 3.
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  BACKBONE_ASSERT(md != nullptr);
  return md;
}

std::string digest(std::string_view a, std::string_view b) {
  struct Free {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  thread_local std::unique_ptr<EVP_MD_CTX, Free> ctx(EVP_MD_CTX_new());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  BACKBONE_ASSERT(EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) == 1);
  BACKBONE_ASSERT(EVP_DigestUpdate(ctx.get(), a.data(), a.size()) == 1);
  if (!b.empty()) BACKBONE_ASSERT(EVP_DigestUpdate(ctx.get(), b.data(), b.size()) == 1);
  BACKBONE_ASSERT(EVP_DigestFinal_ex(ctx.get(), md, &len) == 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * len, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0x0F];
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) { return digest(data, {}); }
std::string sha256_hex(std::string_view a, std::string_view b) { return digest(a, b); }

}  // namespace backbone
