// HttpListener: an HTTP/1.1 server with event-driven I/O (Boost.Beast on Asio), for a Router.
//
// One I/O thread reads and writes every connection; a connection that sends nothing, or a byte
// a second, costs a socket and a few KiB, never a thread. Requests run on a pool of worker
// threads (routes marked inline run on the I/O thread). What a client can hold is bounded:
//
//  - a request's line and headers must arrive within header_timeout_ms of its first byte (a
//    new connection's first byte within the same time), its body within body_timeout_ms, and
//    an answer must be taken within write_timeout_ms; a kept-alive connection may stay silent
//    for idle_timeout_ms between requests. Past a deadline the connection is closed.
//  - at most max_connections at once, and max_connections_per_address from one peer address;
//    a connection beyond either is answered 503 and closed.
//  - headers of at most max_header_bytes (431), a body of at most max_body_bytes (413).
//
// TLS (1.2 and up) when the options name a certificate and key; reload_tls() reads them again
// (serve calls it on SIGHUP). Keep-alive as HTTP/1.1 says; "Expect: 100-continue" is answered. A
// streamed response (HttpResponse::on_stream) is sent with chunked encoding as its producer sends,
// on the I/O thread. stop() stops accepting, closes idle connections, lets the requests in progress
// answer (up to drain_timeout_ms), ends the streams, and makes run() return.
//
// Thread-safety: bind, then run() on one thread; stop() from any thread, before, during or
// after run(). The counters are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backbone/result.h"
#include "http/router.h"

namespace backbone::http {

struct ListenerOptions {
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  int64_t header_timeout_ms = 10'000;
  int64_t body_timeout_ms = 30'000;
  int64_t write_timeout_ms = 30'000;
  int64_t idle_timeout_ms = 30'000;
  int64_t drain_timeout_ms = 10'000;
  size_t max_connections = 4096;
  size_t max_connections_per_address = 512;
  size_t workers = 16;
  // TLS: a PEM certificate chain and its private key; both empty for plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpListener {
 public:
  HttpListener(const Router& router, ListenerOptions options);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds "host:port" (IPv4, IPv6 in brackets, or a name; port 0 picks a free one). With TLS
  // files in the options, it loads them first (kInvalidArgument naming the file that is bad).
  Result<void> bind(const std::string& listen);
  // Reads the TLS files again: connections from now on use them, those open keep theirs. On an
  // error the files in use stay. kInvalidArgument without TLS.
  Result<void> reload_tls();
  bool tls() const;
  int port() const;
  void run();
  void stop();

  struct Counters {
    uint64_t open = 0;      // connections open now
    uint64_t accepted = 0;  // since the start
    uint64_t refused = 0;   // answered 503 for a cap
    uint64_t timed_out = 0;
  };
  Counters counters() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether every address that the host of "host:port" names is a loopback one (127.0.0.0/8,
// ::1). An empty host, 0.0.0.0 or :: (every interface) is not. kInvalidArgument when the host
// does not resolve.
Result<bool> is_loopback_listen(const std::string& listen);

}  // namespace backbone::http
