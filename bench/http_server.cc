// bench_http_server: the HTTP API's server (Boost.Beast, src/http/) against the server it
// replaced (cpp-httplib's thread pool, 8 threads as Debian builds it), serving the same routes of
// the same App, in the same run, under `wrk`:
//   - batch ingest: POST /v1/envs/sandbox/events, 100 events a request (SQLite store, fsync);
//   - /healthz: what the transport alone costs.
// Rounds alternate between the two servers; it prints medians and the ratio new / old.
//
//   bench_http_server [--dir D] [--rounds N] [--seconds S] [--connections C] [--workers W]
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "bench/bench_util.h"
#include "server/app.h"
#include "server/http_server.h"

using namespace backbone;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_http_server: %s\n", what.c_str());
  std::exit(1);
}

// The routes of `router` on cpp-httplib: the server before this one.
void serve_with_httplib(httplib::Server& s, const http::Router& router) {
  auto handle = [&router](const httplib::Request& in, httplib::Response& out) {
    http::HttpRequest req;
    req.method = in.method;
    req.target = in.target;
    req.path = in.path;
    for (const auto& [k, v] : in.params) req.params.emplace(k, v);
    for (const auto& [k, v] : in.headers) req.headers.emplace_back(k, v);
    req.body = in.body;
    req.remote_address = in.remote_addr;
    http::HttpResponse res;
    const http::Router::Match m = router.find(req);
    router.handle(m, req, res);
    out.status = res.status;
    for (const auto& [k, v] : res.headers) out.set_header(k, v);
    out.set_content(res.body, res.content_type);
  };
  s.Get(".*", handle);
  s.Post(".*", handle);
  s.set_tcp_nodelay(true);
}

const char* kIngestScript = R"(
local counter = 0
local tag = "x"
local token = ""
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  tag = args[1]
  token = args[2]
end
function request()
  counter = counter + 1
  local items = {}
  for i = 1, 100 do
    items[i] = string.format(
      '{"record_type":"contact","record_id":"%s-%d-%d-%d","source":"crm","base_version":0,' ..
      '"changes":{"name":"Ada Lovelace","email":"ada@example.com","tier":3}}',
      tag, tid, counter, i)
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer " .. token},
                    "[" .. table.concat(items, ",") .. "]")
end
)";

struct WrkResult {
  double requests_per_s = 0;
  long non_2xx = 0;
  long errors = 0;
};

WrkResult run_wrk(const std::string& url, int seconds, int connections, const std::string& script,
                  const std::string& args) {
  std::string cmd = "wrk -t2 -c" + std::to_string(connections) + " -d" + std::to_string(seconds) +
                    "s --timeout 30s";
  if (!script.empty()) cmd += " -s " + script;
  cmd += " " + url;
  if (!args.empty()) cmd += " -- " + args;
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) die("cannot run wrk");
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (::pclose(p) != 0) die("wrk failed: " + out);
  WrkResult r;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))"))) {
    r.requests_per_s = std::stod(m[1]);
  } else {
    die("no Requests/sec in wrk's output: " + out);
  }
  if (std::regex_search(out, m, std::regex(R"(Non-2xx or 3xx responses:\s+([0-9]+))"))) {
    r.non_2xx = std::stol(m[1]);
  }
  if (std::regex_search(out, m, std::regex(R"(Socket errors:.*timeout ([0-9]+))"))) {
    r.errors = std::stol(m[1]);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli("bench_http_server");
  std::string dir = "var/bench/http";
  int rounds = 3, seconds = 5, connections = 16, workers = 0;
  cli.add_option("--dir", dir);
  cli.add_option("--rounds", rounds);
  cli.add_option("--seconds", seconds);
  cli.add_option("--connections", connections);
  cli.add_option("--workers", workers, "the new server's workers (default: the config's)");
  CLI11_PARSE(cli, argc, argv);

  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto config = parse_config("", "bench");
  if (!config.ok()) die(config.error().describe());
  config->store = "sqlite://" + dir + "/{env}.db";
  config->broker = "embedded://" + dir + "/broker";
  config->tokens = dir + "/tokens.json";
  config->durability = Durability::kFsync;
  config->environments = {"sandbox"};
  if (workers > 0) config->http.workers = static_cast<size_t>(workers);
  server::AppOptions ao;
  ao.config = *config;
  ao.start_stages = false;  // ingest alone: what the HTTP server carries
  auto app = server::App::open(ao);
  if (!app.ok()) die(app.error().describe());
  auto token = (*app)->create_token("sandbox", "bench", {"publish"});
  if (!token.ok()) die(token.error().describe());

  server::HttpServer beast(**app);
  if (auto b = beast.bind("127.0.0.1:0"); !b.ok()) die(b.error().describe());
  std::thread beast_thread([&] { beast.run(); });
  httplib::Server old;
  serve_with_httplib(old, beast.router());
  old.set_payload_max_length(config->max_body_bytes);
  const int old_port = old.bind_to_any_port("127.0.0.1");
  std::thread old_thread([&] { old.listen_after_bind(); });
  while (!old.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  const std::string script = dir + "/ingest.lua";
  std::ofstream(script) << kIngestScript;
  const std::string base_new = "http://127.0.0.1:" + std::to_string(beast.port());
  const std::string base_old = "http://127.0.0.1:" + std::to_string(old_port);

  std::printf("bench_http_server  machine: %s\n", bench::machine_description().c_str());
  std::printf(
      "wrk -t2 -c%d, %d s a round, %d rounds alternating; ingest: 100 events a request (%zu B "
      "each as JSON), SQLite store, durability fsync; the new server: Boost.Beast, %zu workers; "
      "the old one: cpp-httplib, 8 threads\n",
      connections, seconds, rounds,
      std::string(
          R"({"record_type":"contact","record_id":"r-0-000-00","source":"crm","base_version":0,"changes":{"name":"Ada Lovelace","email":"ada@example.com","tier":3}})")
          .size(),
      config->http.workers);
  std::vector<double> ingest_new, ingest_old, health_new, health_old;
  long bad = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int which = 0; which < 2; ++which) {
      const bool is_new = (r + which) % 2 == 0;  // alternate who goes first
      const std::string& base = is_new ? base_new : base_old;
      const std::string tag = std::string(is_new ? "n" : "o") + std::to_string(r);
      auto ingest = run_wrk(base + "/v1/envs/sandbox/events", seconds, connections, script,
                            tag + " " + *token);
      auto health = run_wrk(base + "/healthz", seconds, connections, "", "");
      bad += ingest.non_2xx + ingest.errors + health.non_2xx + health.errors;
      (is_new ? ingest_new : ingest_old).push_back(ingest.requests_per_s * 100);
      (is_new ? health_new : health_old).push_back(health.requests_per_s);
      std::printf("round %d %-8s ingest %8.0f ev/s   /healthz %8.0f req/s\n", r,
                  is_new ? "beast" : "httplib", ingest.requests_per_s * 100, health.requests_per_s);
      std::fflush(stdout);
    }
  }
  const double ingest_ratio = bench::median(ingest_new) / bench::median(ingest_old);
  const double health_ratio = bench::median(health_new) / bench::median(health_old);
  std::printf("ingest   median: beast %.0f ev/s, httplib %.0f ev/s: ratio %.2f\n",
              bench::median(ingest_new), bench::median(ingest_old), ingest_ratio);
  std::printf("/healthz median: beast %.0f req/s, httplib %.0f req/s: ratio %.2f\n",
              bench::median(health_new), bench::median(health_old), health_ratio);
  std::printf("answers that were not 2xx, or timed out: %ld\n", bad);

  beast.stop();
  beast_thread.join();
  old.stop();
  old_thread.join();
  return bad == 0 ? 0 : 1;
}
