#include "http/http_listener.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace backbone::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using ms = std::chrono::milliseconds;

namespace {

// A chunk backlog beyond this means the client does not read its stream: it is closed.
constexpr size_t kMaxStreamBacklog = 4 << 20;

}  // namespace

// What the listener asks of a connection, whatever its stream (plain or TLS).
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Each posts to the connection's strand.
  virtual void post_stop() = 0;   // stop(): close if idle, after the answer if busy
  virtual void post_close() = 0;  // close now
  virtual void post_chunk(std::string chunk) = 0;
  virtual void post_end() = 0;
  virtual bool stream_open() const = 0;
};

class HttpListener::Impl {
 public:
  template <class S>
  class Session;
  class Stream;

  Impl(const Router& router, ListenerOptions o)
      : router_(router),
        o_(o),
        acceptor_(ioc_),
        guard_(net::make_work_guard(ioc_)),
        drain_timer_(ioc_),
        accept_timer_(ioc_),
        pool_(std::max<size_t>(o.workers, 1)) {}

  Result<void> bind(const std::string& listen);
  Result<void> load_tls();
  void run();
  void stop();
  void accept();

  // Admits a new connection from `address` under the caps; false: it is to be refused.
  bool admit(const std::string& address) {
    std::lock_guard lk(mu_);
    if (stopping_) return false;
    size_t& n = per_address_[address];
    if (open_ >= o_.max_connections || n >= o_.max_connections_per_address) {
      if (n == 0) per_address_.erase(address);
      return false;
    }
    ++n;
    ++open_;
    return true;
  }
  void register_session(SessionBase* s, std::weak_ptr<SessionBase> w) {
    std::lock_guard lk(mu_);
    sessions_[s] = std::move(w);
  }
  void release(SessionBase* s, const std::string& address) {
    bool last = false;
    {
      std::lock_guard lk(mu_);
      sessions_.erase(s);
      auto it = per_address_.find(address);
      if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
      --open_;
      last = stopping_ && open_ == 0;
    }
    if (last && !ran_) net::post(ioc_, [this] { finish_stop(); });
  }
  void finish_stop() {
    drain_timer_.cancel();
    guard_.reset();
  }
  void refuse(tcp::socket socket);
  std::shared_ptr<net::ssl::context> tls() {
    std::lock_guard lk(mu_);
    return tls_;
  }
  std::vector<std::shared_ptr<SessionBase>> live_sessions() {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard lk(mu_);
    for (auto& [p, w] : sessions_) {
      if (auto s = w.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  // Declared first, destroyed last: the I/O objects below destroy sessions that use them.
  mutable std::mutex mu_;
  bool stopping_ = false;                                                  // GUARDED_BY(mu_)
  size_t open_ = 0;                                                        // GUARDED_BY(mu_)
  std::map<std::string, size_t> per_address_;                              // GUARDED_BY(mu_)
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions_;  // GUARDED_BY(mu_)
  std::shared_ptr<net::ssl::context> tls_;  // GUARDED_BY(mu_); null: plain HTTP
  std::atomic<uint64_t> accepted_{0}, refused_{0}, timed_out_{0};
  std::atomic<bool> run_called_{false}, stop_called_{false}, ran_{false};

  const Router& router_;
  const ListenerOptions o_;
  net::io_context ioc_{1};
  tcp::acceptor acceptor_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  net::steady_timer drain_timer_;
  net::steady_timer accept_timer_;
  net::thread_pool pool_;
  int port_ = 0;
};

// One connection, on a plain TCP stream or a TLS one. Every member function runs on the
// connection's strand (its stream's executor), except those that post to it.
template <class S>
class HttpListener::Impl::Session final : public SessionBase,
                                          public std::enable_shared_from_this<Session<S>> {
 public:
  static constexpr bool kTls = !std::is_same_v<S, beast::tcp_stream>;

  // `ctx`: the TLS context that `stream` uses (kept as long as the connection), or null.
  Session(Impl& owner, std::shared_ptr<net::ssl::context> ctx, S stream, std::string address)
      : owner_(owner),
        ctx_(std::move(ctx)),
        stream_(std::move(stream)),
        address_(std::move(address)) {}
  ~Session() override { owner_.release(this, address_); }

  void start() {
    if constexpr (kTls) {
      // The handshake is part of the request's header time.
      arm(ms(owner_.o_.header_timeout_ms));
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  if (self->deadline_passed(ec)) ++self->owner_.timed_out_;
                                  return self->close();
                                }
                                self->read_request();
                              });
    } else {
      read_request();
    }
  }

  void post_start() {
    net::post(executor(), [self = this->shared_from_this()] { self->start(); });
  }
  void post_stop() override {
    net::post(executor(), [self = this->shared_from_this()] { self->on_stop(); });
  }
  void post_close() override {
    net::post(executor(), [self = this->shared_from_this()] { self->close(); });
  }
  void post_chunk(std::string chunk) override {
    net::post(executor(), [self = this->shared_from_this(), c = std::move(chunk)]() mutable {
      self->queue_chunk(std::move(c));
    });
  }
  void post_end() override {
    net::post(executor(), [self = this->shared_from_this()] { self->end_stream(); });
  }
  bool stream_open() const override { return stream_open_.load(); }

 private:
  enum class State { kReading, kHandling, kWriting, kStreaming };

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  // Deadlines: the stream closes itself when one passes. Whether a failure was a deadline is
  // told by the clock too: an operation that completed as the timer fired leaves the next one
  // to fail on the closed socket with another error.
  void arm(ms d) {
    lowest().expires_after(d);
    deadline_ = std::chrono::steady_clock::now() + d;
  }
  void disarm() {
    lowest().expires_never();
    deadline_.reset();
  }
  bool deadline_passed(beast::error_code ec) const {
    return ec == beast::error::timeout ||
           (deadline_ && std::chrono::steady_clock::now() >= *deadline_);
  }
  auto executor() { return stream_.get_executor(); }

  // stop(): an idle connection closes now; a busy one after its answer; a stream ends.
  void on_stop() {
    stopping_ = true;
    if (state_ == State::kReading) return close();
    if (state_ == State::kStreaming) end_stream();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    stream_open_ = false;
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  // A TLS connection says close_notify first (within a second), then closes.
  void finish() {
    if constexpr (kTls) {
      if (closed_) return;
      arm(ms(1000));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->close(); });
    } else {
      close();
    }
  }

  void read_request() {
    state_ = State::kReading;
    if (stopping_) return finish();
    parser_.emplace();
    parser_->body_limit(owner_.o_.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(owner_.o_.max_header_bytes));
    if (requests_ > 0 && buffer_.size() == 0) {
      // Kept alive: it may be silent for the idle timeout, then has the header deadline.
      arm(ms(owner_.o_.idle_timeout_ms));
      stream_.async_read_some(buffer_.prepare(4096),
                              [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                                if (ec) return self->read_failed(ec);
                                self->buffer_.commit(n);
                                self->read_header();
                              });
      return;
    }
    read_header();
  }

  void read_header() {
    arm(ms(owner_.o_.header_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->read_failed(ec);
                               self->on_header();
                             });
  }

  void on_header() {
    header_at_ = std::chrono::steady_clock::now();
    if (parser_->is_done()) return on_request();
    arm(ms(owner_.o_.body_timeout_ms));
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                       parser_->get().version());
      bhttp::async_write(stream_, *cont,
                         [self = this->shared_from_this(), cont](beast::error_code ec, size_t) {
                           if (ec) return self->read_failed(ec);
                           self->read_body();
                         });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->read_failed(ec);
                        self->on_request();
                      });
  }

  void read_failed(beast::error_code ec) {
    if (deadline_passed(ec)) {
      ++owner_.timed_out_;
      return close();
    }
    if (ec == bhttp::error::body_limit) return answer_failure(413);
    if (ec == bhttp::error::header_limit) return answer_failure(431);
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::bad_descriptor || ec.category() == net::error::get_ssl_category() ||
        closed_) {
      return close();
    }
    answer_failure(400);  // a malformed request
  }

  // A request that never reached a route: answered, then the connection is closed (what
  // follows on it cannot be trusted to start a request).
  void answer_failure(int status) {
    HttpRequest req;
    if (parser_ && parser_->is_header_done()) {
      req.method = std::string(parser_->get().method_string());
      req.target = std::string(parser_->get().target());
      req.path = req.target.substr(0, req.target.find('?'));
    }
    req.remote_address = address_;
    req.received = std::chrono::steady_clock::now();
    HttpResponse res;
    owner_.router_.fail(req, res, status);
    keep_alive_ = false;
    linger_ = true;
    write_response(std::move(res));
  }

  // After an answer to a request whose rest is unread (a body too large): read away what the
  // client still sends, for up to 5 s, before closing, so that its send does not meet a reset
  // before it reads the answer. (A plain connection stops sending first.)
  void linger() {
    if constexpr (!kTls) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    arm(ms(std::min<int64_t>(owner_.o_.body_timeout_ms, 5'000)));
    linger_read();
  }
  void linger_read() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->close();  // the client's end, or the time
                              self->linger_read();
                            });
  }

  void on_request() {
    ++requests_;
    auto msg = parser_->release();
    parser_.reset();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    if (!parse_target(req.target, req.path, req.params)) return answer_failure(400);
    for (const auto& f : msg) {
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    req.remote_address = address_;
    req.received = header_at_;
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    state_ = State::kHandling;
    disarm();
    auto req_ptr = std::make_shared<HttpRequest>(std::move(req));
    const Router::Match m = owner_.router_.find(*req_ptr);
    if (m.handler != nullptr && m.run == Router::Run::kInline) {
      HttpResponse res;
      owner_.router_.handle(m, *req_ptr, res);
      return write_response(std::move(res));
    }
    net::post(owner_.pool_, [self = this->shared_from_this(), req_ptr, m] {
      auto res = std::make_shared<HttpResponse>();
      self->owner_.router_.handle(m, *req_ptr, *res);
      net::post(self->executor(), [self, res] { self->write_response(std::move(*res)); });
    });
  }

  void write_response(HttpResponse res) {
    if (closed_) return;
    if (res.on_stream) return start_stream(std::move(res));
    state_ = State::kWriting;
    auto out = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(res.status), version_);
    out->set(bhttp::field::content_type,
             res.content_type.empty() ? "text/plain" : res.content_type);
    for (auto& [k, v] : res.headers) out->set(k, v);
    out->body() = std::move(res.body);
    // Every answer after stop() was called closes its connection (stop_called_ is set at the
    // call; stopping_ only once the stop reached this connection's strand).
    out->keep_alive(keep_alive_ && !stopping_ && !owner_.stop_called_);
    out->prepare_payload();
    arm(ms(owner_.o_.write_timeout_ms));
    bhttp::async_write(stream_, *out,
                       [self = this->shared_from_this(), out](beast::error_code ec, size_t) {
                         if (ec) {
                           if (self->deadline_passed(ec)) ++self->owner_.timed_out_;
                           return self->close();
                         }
                         if (self->linger_) return self->linger();
                         if (!out->keep_alive()) return self->finish();
                         self->read_request();
                       });
  }

  // Streams (on the strand).
  void start_stream(HttpResponse res);
  void queue_chunk(std::string chunk) {
    if (closed_ || state_ != State::kStreaming || ended_) return;
    backlog_ += chunk.size();
    if (backlog_ > kMaxStreamBacklog) return close();
    out_.push_back(std::move(chunk));
    if (!writing_) write_next_chunk();
  }
  void end_stream() {
    if (closed_ || ended_) return;
    ended_ = true;
    if (!writing_) write_next_chunk();
  }
  void write_next_chunk();
  void watch_client();

  Impl& owner_;                             // outlives its sessions
  std::shared_ptr<net::ssl::context> ctx_;  // before stream_, which uses it
  S stream_;
  const std::string address_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  State state_ = State::kReading;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  std::chrono::steady_clock::time_point header_at_;  // when the request's headers were in
  uint64_t requests_ = 0;
  bool stopping_ = false;
  bool closed_ = false;
  bool linger_ = false;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  // Streaming.
  std::deque<std::string> out_;
  size_t backlog_ = 0;
  bool writing_ = false;
  bool ended_ = false;
  std::atomic<bool> stream_open_{false};
  std::shared_ptr<bhttp::response<bhttp::empty_body>> stream_head_;
  std::shared_ptr<bhttp::response_serializer<bhttp::empty_body>> stream_serializer_;
  char scratch_[16384];
};

class HttpListener::Impl::Stream final : public ResponseStream {
 public:
  explicit Stream(std::weak_ptr<SessionBase> s) : s_(std::move(s)) {}
  bool send(std::string chunk) override {
    auto s = s_.lock();
    if (!s || !s->stream_open()) return false;
    s->post_chunk(std::move(chunk));
    return true;
  }
  void end() override {
    if (auto s = s_.lock()) s->post_end();
  }
  bool open() const override {
    auto s = s_.lock();
    return s && s->stream_open();
  }

 private:
  std::weak_ptr<SessionBase> s_;
};

template <class S>
void HttpListener::Impl::Session<S>::start_stream(HttpResponse res) {
  state_ = State::kStreaming;
  keep_alive_ = false;
  stream_head_ = std::make_shared<bhttp::response<bhttp::empty_body>>(
      static_cast<bhttp::status>(res.status), version_);
  stream_head_->set(bhttp::field::content_type,
                    res.content_type.empty() ? "text/event-stream" : res.content_type);
  stream_head_->set(bhttp::field::cache_control, "no-cache");
  for (auto& [k, v] : res.headers) stream_head_->set(k, v);
  stream_head_->keep_alive(false);
  stream_head_->chunked(true);
  stream_serializer_ =
      std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*stream_head_);
  writing_ = true;
  stream_open_ = true;
  arm(ms(owner_.o_.write_timeout_ms));
  bhttp::async_write_header(stream_, *stream_serializer_,
                            [self = this->shared_from_this(), produce = std::move(res.on_stream)](
                                beast::error_code ec, size_t) {
                              self->writing_ = false;
                              if (ec) return self->close();
                              self->disarm();
                              self->watch_client();
                              std::weak_ptr<SessionBase> weak = self;
                              auto stream = std::make_shared<Stream>(std::move(weak));
                              net::post(self->owner_.pool_, [produce, stream] { produce(stream); });
                              if (self->stopping_) self->ended_ = true;
                              self->write_next_chunk();
                            });
}

template <class S>
void HttpListener::Impl::Session<S>::write_next_chunk() {
  if (closed_ || writing_) return;
  if (out_.empty()) {
    if (!ended_) return;
    writing_ = true;
    stream_open_ = false;
    arm(ms(owner_.o_.write_timeout_ms));
    net::async_write(
        stream_, bhttp::make_chunk_last(),
        [self = this->shared_from_this()](beast::error_code, size_t) { self->finish(); });
    return;
  }
  writing_ = true;
  auto chunk = std::make_shared<std::string>(std::move(out_.front()));
  out_.pop_front();
  arm(ms(owner_.o_.write_timeout_ms));
  net::async_write(stream_, bhttp::make_chunk(net::buffer(*chunk)),
                   [self = this->shared_from_this(), chunk](beast::error_code ec, size_t) {
                     self->writing_ = false;
                     self->backlog_ -= chunk->size();
                     if (ec) return self->close();
                     self->disarm();
                     self->write_next_chunk();
                   });
}

template <class S>
void HttpListener::Impl::Session<S>::watch_client() {
  // Whatever a stream's client sends is ignored; its end closes the stream.
  stream_.async_read_some(net::buffer(scratch_),
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) return self->close();
                            self->watch_client();
                          });
}

Result<void> HttpListener::Impl::load_tls() {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                   net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
  beast::error_code ec;
  ctx->use_certificate_chain_file(o_.tls_cert_file, ec);
  if (ec) {
    return make_error(Errc::kInvalidArgument,
                      "cannot use the TLS certificate " + o_.tls_cert_file + ": " + ec.message(),
                      "tls.cert_file");
  }
  ctx->use_private_key_file(o_.tls_key_file, net::ssl::context::pem, ec);
  if (ec) {
    return make_error(Errc::kInvalidArgument,
                      "cannot use the TLS key " + o_.tls_key_file + " with the certificate " +
                          o_.tls_cert_file + ": " + ec.message(),
                      "tls.key_file");
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return make_error(
        Errc::kInvalidArgument,
        "the TLS key " + o_.tls_key_file + " is not the certificate's (" + o_.tls_cert_file + ")",
        "tls.key_file");
  }
  std::lock_guard lk(mu_);
  tls_ = std::move(ctx);
  return {};
}

Result<void> HttpListener::Impl::bind(const std::string& listen) {
  if (!o_.tls_cert_file.empty() || !o_.tls_key_file.empty()) BACKBONE_TRY(load_tls());
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return make_error(Errc::kInvalidArgument, "want host:port, got \"" + listen + "\"", "listen");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port_text = listen.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return make_error(Errc::kInvalidArgument, "bad port in \"" + listen + "\"", "listen");
  }
  beast::error_code err;
  tcp::resolver resolver(ioc_);
  auto found = resolver.resolve(host, port_text, tcp::resolver::passive, err);
  if (err || found.empty()) {
    return make_error(Errc::kInvalidArgument, "cannot resolve \"" + host + "\": " + err.message(),
                      "listen");
  }
  const tcp::endpoint ep = found.begin()->endpoint();
  acceptor_.open(ep.protocol(), err);
  if (!err) acceptor_.set_option(net::socket_base::reuse_address(true), err);
  if (!err) acceptor_.bind(ep, err);
  if (!err) acceptor_.listen(net::socket_base::max_listen_connections, err);
  if (err) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    return make_error(Errc::kUnavailable, "cannot listen on " + listen + ": " + err.message());
  }
  port_ = acceptor_.local_endpoint().port();
  return {};
}

void HttpListener::Impl::accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      // Out of descriptors, or a connection reset before it was taken: try again shortly.
      accept_timer_.expires_after(ms(50));
      accept_timer_.async_wait([this](beast::error_code e) {
        if (!e && acceptor_.is_open()) accept();
      });
      return;
    }
    ++accepted_;
    beast::error_code ignored;
    s.set_option(tcp::no_delay(true), ignored);
    const auto remote = s.remote_endpoint(ignored);
    std::string address = ignored ? std::string() : remote.address().to_string();
    if (!admit(address)) {
      ++refused_;
      refuse(std::move(s));
    } else if (auto ctx = tls()) {
      using TlsStream = beast::ssl_stream<beast::tcp_stream>;
      TlsStream stream(beast::tcp_stream(std::move(s)), *ctx);
      auto session = std::make_shared<Session<TlsStream>>(*this, std::move(ctx), std::move(stream),
                                                          std::move(address));
      register_session(session.get(), session);
      session->post_start();
    } else {
      auto session = std::make_shared<Session<beast::tcp_stream>>(
          *this, nullptr, beast::tcp_stream(std::move(s)), std::move(address));
      register_session(session.get(), session);
      session->post_start();
    }
    accept();
  });
}

void HttpListener::Impl::refuse(tcp::socket socket) {
  static const std::string kBusy = [] {
    const std::string body =
        R"({"error":{"code":"UNAVAILABLE","message":"too many connections to this server, or )"
        R"(from this address","details":null}})";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           "Connection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  auto s = std::make_shared<tcp::socket>(std::move(socket));
  net::async_write(*s, net::buffer(kBusy), [s](beast::error_code, size_t) {
    beast::error_code ignored;
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->close(ignored);
  });
}

void HttpListener::Impl::run() {
  if (!stop_called_) accept();
  ioc_.run();
  // Stopped. Requests still running (past the drain timeout) finish; their answers find their
  // connections closed.
  ran_ = true;
  pool_.join();
  ioc_.restart();
  ioc_.poll();
}

void HttpListener::Impl::stop() {
  if (stop_called_.exchange(true)) return;
  net::post(ioc_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_timer_.cancel();
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    for (auto& s : live_sessions()) s->post_stop();
    bool none = false;
    {
      std::lock_guard lk(mu_);
      none = open_ == 0;
    }
    if (none) return finish_stop();
    drain_timer_.expires_after(ms(o_.drain_timeout_ms));
    drain_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      for (auto& s : live_sessions()) s->post_close();
      guard_.reset();
    });
  });
}

Result<bool> is_loopback_listen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty()) return false;
  beast::error_code ec;
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  auto found = resolver.resolve(host, "0", ec);
  if (ec || found.empty()) {
    return make_error(Errc::kInvalidArgument, "cannot resolve \"" + host + "\": " + ec.message(),
                      "listen");
  }
  for (const auto& entry : found) {
    if (!entry.endpoint().address().is_loopback()) return false;
  }
  return true;
}

HttpListener::HttpListener(const Router& router, ListenerOptions options)
    : impl_(std::make_unique<Impl>(router, options)) {}

HttpListener::~HttpListener() {
  stop();
  // Nothing ran the loop: run it now until the stop above is done. (A run() on another thread
  // must have returned before the listener is destroyed.)
  if (!impl_->run_called_.exchange(true)) impl_->run();
}

Result<void> HttpListener::bind(const std::string& listen) { return impl_->bind(listen); }
int HttpListener::port() const { return impl_->port_; }
void HttpListener::run() {
  if (!impl_->run_called_.exchange(true)) impl_->run();
}
void HttpListener::stop() { impl_->stop(); }
bool HttpListener::tls() const { return impl_->tls() != nullptr; }
Result<void> HttpListener::reload_tls() {
  if (!tls()) return make_error(Errc::kInvalidArgument, "this listener serves no TLS");
  return impl_->load_tls();
}

HttpListener::Counters HttpListener::counters() const {
  Counters c;
  {
    std::lock_guard lk(impl_->mu_);
    c.open = impl_->open_;
  }
  c.accepted = impl_->accepted_;
  c.refused = impl_->refused_;
  c.timed_out = impl_->timed_out_;
  return c;
}

}  // namespace backbone::http
