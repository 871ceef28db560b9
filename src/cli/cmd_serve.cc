// `backbone serve`: the main job. Serves every configured environment (or --env's) over the
// HTTP API: migrates the stores, provisions the topology, relays what a crash left
// unpublished, runs the merge and retry stages. SIGTERM or SIGINT drains: the HTTP server
// finishes the requests in progress, the stages finish the messages they hold, and the broker
// flushes; nothing acknowledged is lost.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "backbone/log.h"
#include "cli/cli_context.h"
#include "http/http_listener.h"
#include "pubsub/front/pubsub_front.h"
#include "server/app.h"
#include "server/http_server.h"

namespace backbone::cli {
namespace {

struct ServeFlags {
  std::string listen;
  std::string pubsub_listen;
  std::string pubsub_anonymous;
  bool insecure_listen = false;
};

// A listener without TLS is for this machine only, unless --insecure-listen says otherwise.
Result<void> check_plaintext(const Config& config, const ServeFlags& flags,
                             const std::string& listen, const char* flag) {
  if (listen.empty() || listen == "off" || !config.tls_cert_file.empty()) return {};
  auto loopback = http::is_loopback_listen(listen);
  if (!loopback.ok()) return make_error(Errc::kInvalidArgument, loopback.error().message, flag);
  if (*loopback) return {};
  if (flags.insecure_listen) {
    log::warn("listen.insecure", {{"flag", flag},
                                  {"listen", listen},
                                  {"why", "not a loopback address, no TLS (--insecure-listen)"}});
    return {};
  }
  return make_error(Errc::kInvalidArgument,
                    listen +
                        " is not a loopback address, and no TLS certificate is configured: "
                        "tokens and events would cross the network in plaintext. Set [tls] "
                        "cert_file and key_file, or pass --insecure-listen",
                    flag);
}

// Logs the failures of the running stages: the first of a kind (subscription and message) at
// once, then at most one line per kind every 10 s, with how many came meanwhile. A broker that
// refuses every pull would otherwise fill the log ten times a second.
class StageErrorLog {
 public:
  void operator()(const std::string& subscription, const Error& e) {
    constexpr int64_t kQuiet = 10 * kSecond;
    const std::string text = e.describe();
    const int64_t now = SystemClock::instance().now().micros();
    std::lock_guard lk(mu_);
    Kind& k = kinds_[subscription + "\n" + text];
    if (k.last != 0 && now - k.last < kQuiet) {
      ++k.since;
      return;
    }
    log::warn("stage.error",
              {{"subscription", subscription}, {"error", text}, {"more_since_last", k.since}});
    k.last = now;
    k.since = 0;
  }

 private:
  struct Kind {
    int64_t last = 0;
    uint64_t since = 0;
  };
  std::mutex mu_;
  std::map<std::string, Kind> kinds_;  // GUARDED_BY(mu_)
};

// The Pub/Sub front, unless its listen address is "" or "off".
Result<std::unique_ptr<pubsub::PubsubFront>> start_pubsub(CliContext& ctx, server::App& app,
                                                          const ServeFlags& flags) {
  const std::string listen =
      flags.pubsub_listen.empty() ? ctx.config.pubsub_listen : flags.pubsub_listen;
  if (listen.empty() || listen == "off") return std::unique_ptr<pubsub::PubsubFront>();
  pubsub::FrontOptions fo;
  fo.project = app.topology().project();
  fo.envs = ctx.config.environments;
  fo.metrics = &app.metrics();
  fo.tls_cert_file = ctx.config.tls_cert_file;
  fo.tls_key_file = ctx.config.tls_key_file;
  fo.iam = &app.iam();
  if (!flags.pubsub_anonymous.empty()) {
    if (!app.pipeline(flags.pubsub_anonymous).ok()) {
      return make_error(Errc::kInvalidArgument,
                        "\"" + flags.pubsub_anonymous + "\" is not an environment served here",
                        "--pubsub-anonymous");
    }
    fo.anonymous = flags.pubsub_anonymous;
  }
  return pubsub::PubsubFront::start(app.consumer_broker(), app.topology(), app.tokens(), fo,
                                    listen);
}

void run_serve(CliContext& ctx, const ServeFlags& flags) {
  // Signals are taken by one thread with sigwait, so block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::string listen = flags.listen.empty() ? ctx.config.listen : flags.listen;
  const std::string pubsub_listen =
      flags.pubsub_listen.empty() ? ctx.config.pubsub_listen : flags.pubsub_listen;
  if (auto r = check_plaintext(ctx.config, flags, listen, "--listen"); !r.ok()) {
    return ctx.fail(r.error());
  }
  if (auto r = check_plaintext(ctx.config, flags, pubsub_listen, "--pubsub-listen"); !r.ok()) {
    return ctx.fail(r.error());
  }

  server::AppOptions o;
  o.config = ctx.config;
  auto stage_errors = std::make_shared<StageErrorLog>();
  o.on_stage_error = [stage_errors](const std::string& sub, const Error& e) {
    (*stage_errors)(sub, e);
  };
  if (ctx.env_flag) o.envs = {ctx.env()};
  o.address = (ctx.config.tls_cert_file.empty() ? "http://" : "https://") + listen;
  auto app = server::App::open(o);
  if (!app.ok()) return ctx.fail(app.error());
  for (const std::string& w : (*app)->warnings()) log::warn("provision", {{"warning", w}});
  server::HttpServer http(**app);
  if (auto b = http.bind(listen); !b.ok()) return ctx.fail(b.error());
  auto front = start_pubsub(ctx, **app, flags);
  if (!front.ok()) return ctx.fail(front.error());
  std::string envs;
  for (const auto& e : (*app)->envs()) envs += (envs.empty() ? "" : ", ") + e;
  const char* scheme = http.tls() ? "https" : "http";
  std::printf("backbone serving %s on %s://%s (broker %s)\n", envs.c_str(), scheme, listen.c_str(),
              ctx.config.broker.c_str());
  std::printf("console at %s://%s/console (sign in with a token)\n", scheme, listen.c_str());
  if (*front) {
    std::printf(
        "Pub/Sub v1 front on port %d, project %s%s\n", (*front)->port(),
        (*app)->topology().project().c_str(),
        flags.pubsub_anonymous.empty()
            ? ""
            : (" (calls without a token from this machine act in " + flags.pubsub_anonymous + ")")
                  .c_str());
  }
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    for (;;) {
      sigwait(&signals, &sig);
      if (sig != SIGHUP) break;
      // SIGHUP: the TLS certificate and key are read again (the front watches its files).
      if (!http.tls()) {
        log::info("tls.reload", {{"result", "no TLS configured, nothing to reload"}});
      } else if (auto r = http.reload_tls(); !r.ok()) {
        log::error("tls.reload", {{"result", "not reloaded; the old ones stay"},
                                  {"error", r.error().describe()}});
      } else {
        log::info("tls.reload", {{"result", "certificate and key reloaded"}});
      }
    }
    log::info("stop", {{"signal", sig}, {"what", "draining"}});  // asked for: no warning
    http.stop();
  });
  http.run();
  if (*front) (*front)->shutdown(2 * kSecond);  // streams end; unacked messages keep their lease
  (*app)->stop();
  if (waiter.joinable()) {
    pthread_kill(waiter.native_handle(), SIGTERM);  // if run() ended on its own
    waiter.join();
  }
  std::printf("backbone stopped cleanly\n");
}

}  // namespace

void register_serve(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("serve",
                                 "Serve the HTTP API and run the pipeline (every "
                                 "environment unless --env)");
  auto flags = std::make_shared<ServeFlags>();
  cmd->add_option("--listen", flags->listen,
                  "host:port (default: BACKBONE_LISTEN, else the config's)");
  cmd->add_option("--pubsub-listen", flags->pubsub_listen,
                  "host:port of the Pub/Sub v1 gRPC front, or \"off\" (default: "
                  "BACKBONE_PUBSUB_LISTEN, else the config's)");
  cmd->add_option("--pubsub-anonymous", flags->pubsub_anonymous,
                  "let Pub/Sub calls without a token, from this machine only, act in this "
                  "environment (the emulator workflow)");
  cmd->add_flag("--insecure-listen", flags->insecure_listen,
                "allow a listen address that is not loopback without TLS");
  cmd->callback([&ctx, flags] { run_serve(ctx, *flags); });
}

}  // namespace backbone::cli
