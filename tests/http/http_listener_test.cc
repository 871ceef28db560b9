// HttpListener on a loopback port, driven by raw sockets: its deadlines, caps, keep-alive,
// streams and stop. Deadlines are the I/O library's real time, so they are set to a few hundred
// milliseconds here, and every wait is a bounded poll for the server's answer or close.
#include "http/http_listener.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <filesystem>

#include "http/raw_connection.h"
#include "http/test_ca.h"
#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

using http::HttpRequest;
using http::HttpResponse;
using http::Router;
using Clock = std::chrono::steady_clock;

std::string get_request(const std::string& path, bool close = false) {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + (close ? "Connection: close\r\n" : "") +
         "\r\n";
}

class Listener : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.get("/hello", [](const HttpRequest& req, HttpResponse& res) {
      res.set_content("hello " + req.param("who"), "text/plain");
    });
    router_.post("/echo", [](const HttpRequest& req, HttpResponse& res) {
      res.set_content(req.body, "application/octet-stream");
    });
    router_.get("/block", [this](const HttpRequest&, HttpResponse& res) {
      std::unique_lock lk(mu_);
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lk, [&] { return released_; });
      res.set_content("released", "text/plain");
    });
    router_.get("/stream", [this](const HttpRequest&, HttpResponse& res) {
      res.on_stream = [this](std::shared_ptr<http::ResponseStream> s) {
        std::lock_guard lk(mu_);
        streams_.push_back(std::move(s));
        cv_.notify_all();
      };
    });
    router_.set_error_handler([](const HttpRequest&, HttpResponse& res) {
      res.content_type = "text/plain";
      res.body = "error " + std::to_string(res.status);
    });
  }
  void start(http::ListenerOptions o) {
    listener_ = std::make_unique<http::HttpListener>(router_, o);
    ASSERT_TRUE(listener_->bind("127.0.0.1:0").ok());
    thread_ = std::thread([this] { listener_->run(); });
  }
  void TearDown() override {
    release();
    if (listener_) listener_->stop();
    if (thread_.joinable()) thread_.join();
  }
  void release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool wait_for(const std::function<bool()>& pred) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::seconds(10), pred);
  }
  int port() const { return listener_->port(); }
  // Sends `request` on `c` and reads until `until` arrives (or 5 s pass, or the server closes).
  static std::string ask(RawConnection& c, const std::string& request, const std::string& until,
                         bool* closed = nullptr) {
    if (!c.send(request)) return "(send failed)";
    return c.receive_until(until, 5000, closed);
  }

  Router router_;
  std::unique_ptr<http::HttpListener> listener_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int blocked_ = 0;
  bool released_ = false;
  std::vector<std::shared_ptr<http::ResponseStream>> streams_;
};

TEST_F(Listener, AKeptAliveConnectionServesRequestsUntilItAsksToClose) {
  start({});
  RawConnection c;
  ASSERT_TRUE(c.connect(port()));
  const std::string first = ask(c, get_request("/hello?who=a%20b+c%2Bd"), "hello a b c+d");
  EXPECT_NE(first.find("HTTP/1.1 200"), std::string::npos) << first;
  EXPECT_NE(first.find("hello a b c+d"), std::string::npos) << first;
  bool closed = false;
  const std::string second = ask(c, get_request("/hello?who=c", true), "hello c", &closed);
  EXPECT_NE(second.find("hello c"), std::string::npos) << second;
  c.receive_until("never", 5000, &closed);
  EXPECT_TRUE(closed) << "Connection: close was not honoured";
}

TEST_F(Listener, UnknownPathsAndMethodsGetTheirStatusThroughTheErrorHandler) {
  start({});
  RawConnection c;
  ASSERT_TRUE(c.connect(port()));
  const std::string missing = ask(c, get_request("/nope"), "error 404");
  EXPECT_NE(missing.find("HTTP/1.1 404"), std::string::npos) << missing;
  const std::string wrong =
      ask(c, "POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "error 405");
  EXPECT_NE(wrong.find("HTTP/1.1 405"), std::string::npos) << wrong;
  EXPECT_NE(wrong.find("Allow: GET"), std::string::npos) << wrong;
  const std::string bad = ask(c, "NOT HTTP AT ALL\r\n\r\n", "error 400");
  EXPECT_NE(bad.find("HTTP/1.1 400"), std::string::npos) << bad;
  RawConnection escape;
  ASSERT_TRUE(escape.connect(port()));
  const std::string bad_escape = ask(escape, get_request("/hello%zz"), "error 400");
  EXPECT_NE(bad_escape.find("HTTP/1.1 400"), std::string::npos) << bad_escape;
}

TEST_F(Listener, AnIncompleteHeaderIsCutAtItsDeadlineWhileOthersAreServed) {
  http::ListenerOptions o;
  o.header_timeout_ms = 400;
  start(o);
  RawConnection slow;
  ASSERT_TRUE(slow.connect(port()));
  const auto t0 = Clock::now();
  ASSERT_TRUE(slow.send("GET /hello HTTP/1.1\r\nX-Slow: "));
  // One byte every 50 ms, as a slow client does: the deadline counts from the first byte, so
  // the trickle does not extend it.
  bool closed = false;
  while (!closed && Clock::now() - t0 < std::chrono::seconds(5)) {
    slow.receive(50, &closed);
    if (!closed && !slow.send("a")) closed = true;
    // Meanwhile another client is answered.
    if (Clock::now() - t0 < std::chrono::milliseconds(200)) {
      RawConnection other;
      ASSERT_TRUE(other.connect(port()));
      ASSERT_TRUE(other.send(get_request("/hello?who=o", true)));
      EXPECT_NE(other.receive_until("hello o", 5000).find("hello o"), std::string::npos);
    }
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_TRUE(closed);
  EXPECT_GE(took.count(), 350);
  EXPECT_LT(took.count(), 3000);
  // The stream closes the socket when its timer fires, before the failed read is handled and
  // counted: wait for the count a little.
  for (int i = 0; i < 200 && listener_->counters().timed_out == 0; ++i) ::poll(nullptr, 0, 10);
  EXPECT_EQ(listener_->counters().timed_out, 1u);
}

TEST_F(Listener, ASilentNewConnectionIsClosedAtTheHeaderDeadline) {
  http::ListenerOptions o;
  o.header_timeout_ms = 300;
  start(o);
  RawConnection idle;
  ASSERT_TRUE(idle.connect(port()));
  bool closed = false;
  idle.receive_until("never", 5000, &closed);
  EXPECT_TRUE(closed);
  for (int i = 0; i < 200 && listener_->counters().timed_out == 0; ++i) ::poll(nullptr, 0, 10);
  EXPECT_EQ(listener_->counters().timed_out, 1u);
}

TEST_F(Listener, ConnectionsBeyondTheCapsAreAnswered503AndTheOthersServed) {
  http::ListenerOptions o;
  o.max_connections = 6;
  o.max_connections_per_address = 4;
  start(o);
  std::vector<RawConnection> held(6);
  // Each answers a request, so that it is known to be admitted before the next one comes.
  auto admitted = [&](RawConnection& c, const char* from) {
    if (!c.connect(port(), from) || !c.send(get_request("/hello?who=x"))) return false;
    return c.receive_until("hello x", 5000).find("200 OK") != std::string::npos;
  };
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(admitted(held[i], "127.0.0.2")) << i;
  RawConnection fifth;
  ASSERT_TRUE(fifth.connect(port(), "127.0.0.2"));
  const std::string refused = fifth.receive_until("}", 5000);
  EXPECT_NE(refused.find("HTTP/1.1 503"), std::string::npos) << refused;
  EXPECT_NE(refused.find("too many connections"), std::string::npos) << refused;
  // Another address is admitted up to the total.
  ASSERT_TRUE(admitted(held[4], "127.0.0.3"));
  ASSERT_TRUE(admitted(held[5], "127.0.0.3"));
  RawConnection over_total;
  ASSERT_TRUE(over_total.connect(port(), "127.0.0.4"));
  EXPECT_NE(over_total.receive_until("}", 5000).find("HTTP/1.1 503"), std::string::npos);
  EXPECT_EQ(listener_->counters().refused, 2u);
  // A closed connection frees its place.
  held[0].close();
  RawConnection again;
  bool ok = false;
  for (int attempt = 0; attempt < 50 && !ok; ++attempt) ok = admitted(again, "127.0.0.2");
  EXPECT_TRUE(ok);
}

TEST_F(Listener, ABodyBeyondTheLimitIs413AndTheClientReadsTheAnswer) {
  http::ListenerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  RawConnection c;
  ASSERT_TRUE(c.connect(port()));
  // Larger than the loopback socket's buffers: without the read-away, the send meets a reset.
  const std::string body(16 << 20, 'x');
  ASSERT_TRUE(
      c.send("POST /echo HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  // The whole body can still be sent: the server reads it away after its answer.
  EXPECT_TRUE(c.send(body));
  const std::string answer = c.receive_until("error 413", 5000);
  EXPECT_NE(answer.find("HTTP/1.1 413"), std::string::npos) << answer.substr(0, 200);
}

TEST_F(Listener, ExpectContinueIsAnsweredBeforeTheBody) {
  start({});
  RawConnection c;
  ASSERT_TRUE(c.connect(port()));
  ASSERT_TRUE(c.send("POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  const std::string cont = c.receive_until("\r\n\r\n", 5000);
  EXPECT_EQ(cont.rfind("HTTP/1.1 100 Continue", 0), 0u) << cont;
  ASSERT_TRUE(c.send("abcde"));
  const std::string answer = c.receive_until("abcde", 5000);
  EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
}

TEST_F(Listener, StreamsHoldNoWorkerAndEndWhenTheirClientGoes) {
  http::ListenerOptions o;
  o.workers = 1;
  start(o);
  std::vector<RawConnection> clients(3);
  for (auto& c : clients) {
    ASSERT_TRUE(c.connect(port()));
    ASSERT_TRUE(c.send(get_request("/stream")));
    EXPECT_NE(c.receive_until("\r\n\r\n", 5000).find("text/event-stream"), std::string::npos);
  }
  ASSERT_TRUE(wait_for([&] { return streams_.size() == 3; }));
  // The one worker is free: a plain request is answered while three streams are open.
  RawConnection plain;
  ASSERT_TRUE(plain.connect(port()));
  ASSERT_TRUE(plain.send(get_request("/hello?who=w", true)));
  EXPECT_NE(plain.receive_until("hello w", 5000).find("hello w"), std::string::npos);
  // Chunks reach each client as the producer sends them.
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(streams_[i]->send("data: " + std::to_string(i) + "\n\n"));
    const std::string got = clients[i].receive_until("data: " + std::to_string(i), 5000);
    EXPECT_NE(got.find("data: " + std::to_string(i)), std::string::npos) << got;
  }
  // A client that goes closes its stream; the producer learns it from send() or open().
  clients[1].close();
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !streams_[1]->open();
    if (!gone) clients[0].receive(10);  // a bounded wait for the server to see the close
  }
  EXPECT_TRUE(gone);
  EXPECT_FALSE(streams_[1]->send("data: late\n\n"));
  EXPECT_TRUE(streams_[0]->open());
  // end() finishes the response: the last chunk, then the connection closes.
  streams_[2]->end();
  bool closed = false;
  const std::string tail = clients[2].receive_until("0\r\n\r\n", 5000, &closed);
  EXPECT_NE(tail.find("0\r\n\r\n"), std::string::npos) << tail;
}

TEST_F(Listener, StopLetsARunningRequestAnswerThenRunReturns) {
  start({});
  RawConnection c;
  ASSERT_TRUE(c.connect(port()));
  ASSERT_TRUE(c.send(get_request("/block")));
  ASSERT_TRUE(wait_for([&] { return blocked_ == 1; }));
  RawConnection idle;
  ASSERT_TRUE(idle.connect(port()));
  listener_->stop();
  bool idle_closed = false;
  idle.receive_until("never", 5000, &idle_closed);
  EXPECT_TRUE(idle_closed) << "an idle connection is closed at stop";
  release();
  const std::string answer = c.receive_until("released", 5000);
  EXPECT_NE(answer.find("released"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  thread_.join();
  // Nothing listens any more.
  RawConnection late;
  EXPECT_FALSE(late.connect(port()));
}

TEST_F(Listener, AStopBeforeRunMakesRunReturnAtOnce) {
  listener_ = std::make_unique<http::HttpListener>(router_, http::ListenerOptions{});
  ASSERT_TRUE(listener_->bind("127.0.0.1:0").ok());
  listener_->stop();
  auto done = std::async(std::launch::async, [this] { listener_->run(); });
  EXPECT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

// A GET of /hello over TLS, trusting only `ca`: the status, or -1 when no answer came (the
// handshake or the verification failed).
int tls_get(int port, const std::string& ca) {
  httplib::SSLClient c("127.0.0.1", port);
  c.set_ca_cert_path(ca.c_str());
  c.enable_server_certificate_verification(true);
  c.set_connection_timeout(5);
  auto r = c.Get("/hello?who=tls");
  if (!r) return -1;
  return r->body == "hello tls" ? r->status : -2;
}

TEST_F(Listener, TlsServesAClientThatTrustsItsCaAndNoOther) {
  TempDir dir;
  const CertFiles ca = make_test_ca(dir.path(), "ca"), other = make_test_ca(dir.path(), "other");
  const CertFiles server = make_server_cert(dir.path(), ca, "server");
  ASSERT_FALSE(server.cert.empty()) << "openssl could not make the test certificates";
  http::ListenerOptions o;
  o.tls_cert_file = server.cert;
  o.tls_key_file = server.key;
  start(o);
  EXPECT_TRUE(listener_->tls());
  EXPECT_EQ(tls_get(port(), ca.cert), 200);
  EXPECT_EQ(tls_get(port(), other.cert), -1) << "a client that trusts another CA was served";
  // Plain HTTP to a TLS port gets no answer.
  RawConnection plain;
  ASSERT_TRUE(plain.connect(port()));
  bool closed = false;
  const std::string got = ask(plain, get_request("/hello?who=x"), "hello x", &closed);
  EXPECT_EQ(got.find("hello x"), std::string::npos) << got;
}

TEST_F(Listener, ReloadedTlsFilesServeNewConnectionsAndABadPairKeepsTheOld) {
  TempDir dir;
  const RenewalCerts c = make_renewal_certs(dir.path());
  ASSERT_TRUE(c.made()) << "openssl could not make the test certificates";
  http::ListenerOptions o;
  o.tls_cert_file = c.live.cert;
  o.tls_key_file = c.live.key;
  start(o);
  EXPECT_EQ(tls_get(port(), c.ca1.cert), 200);
  c.put(c.second);
  EXPECT_EQ(tls_get(port(), c.ca2.cert), -1) << "the new files are taken only on reload";
  ASSERT_TRUE(listener_->reload_tls().ok());
  EXPECT_EQ(tls_get(port(), c.ca2.cert), 200);
  EXPECT_EQ(tls_get(port(), c.ca1.cert), -1);
  // A certificate with another's key is refused, and the one in use stays.
  std::filesystem::copy_file(c.first.key, c.live.key,
                             std::filesystem::copy_options::overwrite_existing);
  auto bad = listener_->reload_tls();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().where, "tls.key_file") << bad.error().message;
  EXPECT_EQ(tls_get(port(), c.ca2.cert), 200);
}

TEST(ListenerTls, MissingOrMismatchedFilesAreRefusedAtBind) {
  TempDir dir;
  const CertFiles ca = make_test_ca(dir.path(), "ca");
  const CertFiles a = make_server_cert(dir.path(), ca, "a"),
                  b = make_server_cert(dir.path(), ca, "b");
  ASSERT_FALSE(b.cert.empty());
  Router router;
  http::ListenerOptions o;
  o.tls_cert_file = dir.file("nope.pem");
  o.tls_key_file = a.key;
  auto missing = http::HttpListener(router, o).bind("127.0.0.1:0");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().where, "tls.cert_file");
  o.tls_cert_file = a.cert;
  o.tls_key_file = b.key;
  auto mismatched = http::HttpListener(router, o).bind("127.0.0.1:0");
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().where, "tls.key_file");
  http::HttpListener plain(router, {});
  EXPECT_FALSE(plain.reload_tls().ok());
}

TEST(ListenAddress, OnlyLoopbackAddressesAreLoopback) {
  EXPECT_TRUE(*http::is_loopback_listen("127.0.0.1:8080"));
  EXPECT_TRUE(*http::is_loopback_listen("127.3.2.1:8080"));
  EXPECT_TRUE(*http::is_loopback_listen("[::1]:8080"));
  EXPECT_TRUE(*http::is_loopback_listen("localhost:8080"));
  EXPECT_FALSE(*http::is_loopback_listen("0.0.0.0:8080"));
  EXPECT_FALSE(*http::is_loopback_listen("[::]:8080"));
  EXPECT_FALSE(*http::is_loopback_listen(":8080"));
  EXPECT_FALSE(*http::is_loopback_listen("10.1.2.3:8080"));
  EXPECT_FALSE(http::is_loopback_listen("no-such-host.invalid:8080").ok());
}

}  // namespace
}  // namespace backbone::testing
