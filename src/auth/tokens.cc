#include "auth/tokens.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backbone/sha256.h"

namespace backbone::auth {

Result<TokenFile> TokenFile::open(const std::string& path) {
  TokenFile store(path);
  std::lock_guard lk(store.mu_);
  BACKBONE_TRY(store.load_locked());
  return store;
}

TokenFile::FileVersion TokenFile::file_version() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return {};
  // Every save renames a new file into place, so the inode changes even when two saves fall in
  // one tick of the file system's clock.
  return {static_cast<uint64_t>(st.st_ino), static_cast<int64_t>(st.st_mtim.tv_sec),
          static_cast<int64_t>(st.st_mtim.tv_nsec)};
}

Result<void> TokenFile::load_locked() const {
  const FileVersion version = file_version();
  if (version.inode == 0) return {};  // no file yet: no tokens
  std::ifstream in(path_);
  if (!in) return {};
  std::stringstream buf;
  buf << in.rdbuf();
  std::map<std::string, Principal> loaded;
  try {
    const auto j = nlohmann::json::parse(buf.str());
    for (const auto& t : j.at("tokens")) {
      Principal p;
      p.name = t.at("name").get<std::string>();
      p.env = t.at("env").get<std::string>();
      for (const auto& r : t.at("roles")) {
        auto perm = parse_permission(r.get<std::string>());
        if (!perm.ok()) {
          return make_error(Errc::kDataLoss,
                            "token file " + path_ + " is damaged: " + perm.error().message);
        }
        p.permissions.add(*perm);
      }
      const std::string sha256 = t.at("sha256").get<std::string>();
      p.id = token_id(sha256);
      loaded[sha256] = std::move(p);
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::kDataLoss, "token file " + path_ + " is damaged: " + e.what());
  }
  by_hash_ = std::move(loaded);
  loaded_ = version;
  return {};
}

Result<std::string> TokenFile::create(const std::string& name, const std::string& env,
                                      const std::vector<std::string>& roles) {
  auto permissions = parse_roles(roles);
  if (!permissions.ok()) return permissions.error();
  auto made = make_token(env);
  if (!made.ok()) return made.error();
  Principal p{name, env, *permissions, token_id(made->sha256)};
  std::lock_guard lk(mu_);
  BACKBONE_TRY(load_locked());  // keep the tokens another process added meanwhile
  by_hash_[made->sha256] = std::move(p);
  BACKBONE_TRY(save());
  return made->token;
}

Result<Principal> TokenFile::authenticate(std::string_view token) const {
  const std::string hash = sha256_hex(token);
  std::lock_guard lk(mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) {
    // Unknown here: `backbone token create` may have added it since the file was read.
    if (file_version() != loaded_) {
      BACKBONE_TRY(load_locked());
      it = by_hash_.find(hash);
    }
  }
  if (it == by_hash_.end()) return make_error(Errc::kUnauthenticated, "unknown bearer token");
  return it->second;
}

std::vector<std::pair<std::string, Principal>> TokenFile::entries() const {
  std::lock_guard lk(mu_);
  return {by_hash_.begin(), by_hash_.end()};
}

size_t TokenFile::size() const {
  std::lock_guard lk(mu_);
  return by_hash_.size();
}

Result<void> TokenFile::save() const {
  nlohmann::json j = {{"tokens", nlohmann::json::array()}};
  for (const auto& [hash, p] : by_hash_) {
    j["tokens"].push_back(
        {{"sha256", hash}, {"name", p.name}, {"env", p.env}, {"roles", p.permissions.names()}});
  }
  const auto dir = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const std::string tmp = path_ + ".new";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(Errc::kUnavailable, "cannot write " + tmp + ": " + std::strerror(errno));
  const std::string text = j.dump(2) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    return make_error(Errc::kUnavailable, "cannot save " + path_ + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace backbone::auth
