#include "commands.h"
namespace mpdet::tools {
Command add_detect_command(CLI::App& app) {
  app.add_subcommand("detect", "(not yet)");
  return []() { return 1; };
}
}  // namespace mpdet::tools
