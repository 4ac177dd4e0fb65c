// The `mpdet` command-line tool: each subcommand lives in its own file and registers itself
// on the CLI11 app; the returned callback runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace mpdet::tools {

using Command = std::function<int()>;

Command add_convert_command(CLI::App& app);
Command add_info_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_detect_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_quantize_command(CLI::App& app);
Command add_devices_command(CLI::App& app);

}  // namespace mpdet::tools
