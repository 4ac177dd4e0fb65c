#include "commands.h"
namespace mpdet::tools {
Command add_eval_command(CLI::App& app) {
  app.add_subcommand("eval", "(not yet)");
  return []() { return 1; };
}
}  // namespace mpdet::tools
