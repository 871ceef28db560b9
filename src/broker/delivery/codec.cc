#include "broker/delivery/codec.h"

#include <zlib.h>

#include <cstring>

namespace backbone::delivery {

void Writer::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void Writer::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void Writer::str(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  out_.append(s);
}

bool Reader::u8(uint8_t& v) {
  if (pos_ + 1 > in_.size()) return false;
  v = static_cast<uint8_t>(in_[pos_++]);
  return true;
}
bool Reader::u32(uint32_t& v) {
  if (pos_ + 4 > in_.size()) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(in_[pos_ + i])} << (8 * i);
  pos_ += 4;
  return true;
}
bool Reader::u64(uint64_t& v) {
  if (pos_ + 8 > in_.size()) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(in_[pos_ + i])} << (8 * i);
  pos_ += 8;
  return true;
}
bool Reader::i64(int64_t& v) {
  uint64_t u;
  if (!u64(u)) return false;
  v = static_cast<int64_t>(u);
  return true;
}
bool Reader::str(std::string& s) {
  uint32_t n;
  if (!u32(n) || pos_ + n > in_.size()) return false;
  s.assign(in_.data() + pos_, n);
  pos_ += n;
  return true;
}

uint32_t crc32_of(std::string_view data) {
  return static_cast<uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

void append_frame(std::string& out, std::string_view payload) {
  Writer w(out);
  w.u32(static_cast<uint32_t>(payload.size()));
  w.u32(crc32_of(payload));
  out.append(payload);
}

std::optional<Frame> read_frame(std::string_view data, size_t pos) {
  if (pos + kFrameHeader > data.size()) return std::nullopt;
  Reader r(data.substr(pos, kFrameHeader));
  uint32_t len = 0, crc = 0;
  r.u32(len);
  r.u32(crc);
  if (pos + kFrameHeader + len > data.size()) return std::nullopt;
  const std::string_view payload = data.substr(pos + kFrameHeader, len);
  if (crc32_of(payload) != crc) return std::nullopt;
  return Frame{payload, kFrameHeader + len};
}

}  // namespace backbone::delivery
