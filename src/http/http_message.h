// HttpRequest and HttpResponse: one HTTP/1.1 exchange as the routes see it, independent of the
// library that carries it (http_listener.h). A response either has its whole body at once, or
// is a stream (Server-Sent Events) whose chunks a producer sends later from any thread through a
// ResponseStream, without holding a thread of the server while it waits.
//
// Thread-safety: HttpRequest and HttpResponse are plain values. ResponseStream is thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backbone::http {

struct HttpRequest {
  std::string method;                                        // "GET", "POST", ...
  std::string target;                                        // as sent: path and query
  std::string path;                                          // percent-decoded, without the query
  std::multimap<std::string, std::string> params;            // the query, decoded
  std::vector<std::pair<std::string, std::string>> headers;  // as sent
  std::string body;
  std::string remote_address;  // the peer's IP address
  // When its headers had arrived (for the access log's duration).
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
  // The route pattern's match: [0] the whole path, then each group.
  std::vector<std::string> matches;

  // The first header of that name (case-insensitive), or "".
  std::string header(std::string_view name) const;
  bool has_param(std::string_view name) const;
  // The first value of the query parameter, or "".
  std::string param(std::string_view name) const;
};

// The sending half of a streamed response. send() queues a chunk for the client and returns at
// once; it returns false when the client is gone (or the server stops), after which the
// producer should drop the stream. end() finishes the response.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual bool send(std::string chunk) = 0;
  virtual void end() = 0;
  virtual bool open() const = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type and length
  // When set, the response is streamed: the status and headers go out, then this is called
  // once with the stream (on a worker thread), and the body is what is sent through it.
  std::function<void(std::shared_ptr<ResponseStream>)> on_stream;

  void set_content(std::string text, std::string type) {
    body = std::move(text);
    content_type = std::move(type);
  }
};

// Splits a request target into its percent-decoded path and query parameters; false on a
// malformed %-escape.
bool parse_target(std::string_view target, std::string& path,
                  std::multimap<std::string, std::string>& params);

}  // namespace backbone::http
