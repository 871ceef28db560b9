// Byte encoding for the embedded broker's files (doc/broker_log_format.md): little-endian
// fixed-width integers, length-prefixed strings, and framed records
//
//   [u32 payload length][u32 CRC-32 of the payload (zlib)][payload]
//
// A reader stops at the first frame that is short or whose CRC does not match: that is where a
// crash cut the last write off.
//
// Thread-safety: plain functions and values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace backbone::delivery {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void str(std::string_view s);  // u32 length, then the bytes

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(uint8_t& v);
  bool u32(uint32_t& v);
  bool u64(uint64_t& v);
  bool i64(int64_t& v);
  bool str(std::string& s);
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

inline constexpr size_t kFrameHeader = 8;

// Appends a frame holding `payload`.
void append_frame(std::string& out, std::string_view payload);
// Reads the frame at `data[pos]`: its payload and total size, or nullopt when the frame is
// short or damaged.
struct Frame {
  std::string_view payload;
  size_t size;
};
std::optional<Frame> read_frame(std::string_view data, size_t pos);

uint32_t crc32_of(std::string_view data);

}  // namespace backbone::delivery
