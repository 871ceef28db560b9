// `backbone serve`: the main job. Serves every configured environment (or --env's) over the
// HTTP API: migrates the stores, provisions the topology, relays what a crash left
// unpublished, runs the merge and retry stages. SIGTERM or SIGINT drains: the HTTP server
// finishes the requests in progress, the stages finish the messages they hold, and the broker
// flushes; nothing acknowledged is lost.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "cli/cli_context.h"
#include "server/app.h"
#include "server/http_server.h"

namespace backbone::cli {
namespace {

void run_serve(CliContext& ctx, const std::string& listen_flag) {
  // Signals are taken by one thread with sigwait, so block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::AppOptions o;
  o.config = ctx.config;
  if (ctx.env_flag) o.envs = {ctx.env()};
  auto app = server::App::open(o);
  if (!app.ok()) return ctx.fail(app.error());
  server::HttpServer http(**app);
  const std::string listen = listen_flag.empty() ? ctx.config.listen : listen_flag;
  if (auto b = http.bind(listen); !b.ok()) return ctx.fail(b.error());
  std::string envs;
  for (const auto& e : (*app)->envs()) envs += (envs.empty() ? "" : ", ") + e;
  std::printf("backbone serving %s on http://%s (broker %s)\n", envs.c_str(), listen.c_str(),
              ctx.config.broker.c_str());
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::warn("signal {}: draining", sig);
    http.stop();
  });
  http.run();
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
  auto listen = std::make_shared<std::string>();
  cmd->add_option("--listen", *listen, "host:port (default: BACKBONE_LISTEN, else the config's)");
  cmd->callback([&ctx, listen] { run_serve(ctx, *listen); });
}

}  // namespace backbone::cli
