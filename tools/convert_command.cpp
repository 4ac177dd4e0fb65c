// mpdet convert CFG WEIGHTS -o model.mpdet — import a Darknet model.
#include <cstdio>
#include <string>

#include "commands.h"
#include "import/darknet_importer.h"
#include "model/model_file.h"
#include "mpdet/error.h"

namespace mpdet::tools {

Command add_convert_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> inputs;
    std::string output, names;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("convert", "Import a Darknet model (CFG WEIGHTS) into a .mpdet file");
  cmd->add_option("inputs", args->inputs, "Darknet .cfg and .weights files")
      ->required()
      ->expected(2);
  cmd->add_option("-o,--output", args->output, "Output .mpdet file")->required();
  cmd->add_option("--names", args->names,
                  "Class names file (default: the .names file beside the cfg)");
  return [args]() {
    std::string cfg, weights;
    for (const std::string& in : args->inputs) {
      const std::string ext = std::filesystem::path(in).extension().string();
      if (ext == ".cfg")
        cfg = in;
      else if (ext == ".weights")
        weights = in;
    }
    if (cfg.empty() || weights.empty())
      throw Error(
          "convert needs a Darknet .cfg and a .weights file (other formats: not yet supported)");
    const model::Model m = import::import_darknet({cfg, weights, args->names});
    model::save_model(m, args->output);
    std::printf("wrote %s: %zu layers, %.3f GMAC, %lld parameters, %zu classes\n",
                args->output.c_str(), m.layers.size(), model::total_macs(m) / 1e9,
                static_cast<long long>(model::total_parameters(m)), m.class_names.size());
    return 0;
  };
}

}  // namespace mpdet::tools
