#include "commands.h"
namespace mpdet::tools {
Command add_bench_command(CLI::App& app) {
  app.add_subcommand("bench", "(not yet)");
  return []() { return 1; };
}
}  // namespace mpdet::tools
