// `backbone version`: the build's version.
#include <sqlite3.h>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backbone/build_info.h"
#include "cli/cli_context.h"

namespace backbone::cli {

void register_version(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("version", "Print the version");
  cmd->callback([&ctx] {
    if (ctx.json) {
      nlohmann::json out = {{"version", build_info::kVersion},
                            {"build_type", build_info::kBuildType},
                            {"sqlite", sqlite3_libversion()}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("backbone %s (%s build, SQLite %s)\n", build_info::kVersion,
                  build_info::kBuildType, sqlite3_libversion());
    }
  });
}

}  // namespace backbone::cli
