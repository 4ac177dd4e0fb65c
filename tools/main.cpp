#include <cstdio>
#include <exception>
#include <map>

#include "commands.h"
#include "mpdet/error.h"

int main(int argc, char** argv) {
  CLI::App app{"mpdet: quantized object detection — convert, inspect, evaluate, detect, benchmark"};
  app.require_subcommand(1);
  std::map<CLI::App*, mpdet::tools::Command> commands;
  auto add = [&](mpdet::tools::Command (*make)(CLI::App&)) {
    const std::size_t before = app.get_subcommands({}).size();
    mpdet::tools::Command run = make(app);
    commands[app.get_subcommands({}).at(before)] = std::move(run);
  };
  add(mpdet::tools::add_convert_command);
  add(mpdet::tools::add_info_command);
  add(mpdet::tools::add_eval_command);
  add(mpdet::tools::add_detect_command);
  add(mpdet::tools::add_bench_command);
  add(mpdet::tools::add_quantize_command);
  add(mpdet::tools::add_devices_command);
  try {
    app.parse(argc, argv);
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return run();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpdet: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
