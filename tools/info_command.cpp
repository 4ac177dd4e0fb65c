// mpdet info model.mpdet — layers, shapes, MACs, parameters, bytes.
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "commands.h"
#include "model/model_file.h"

namespace mpdet::tools {

Command add_info_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto brief = std::make_shared<bool>(false);
  CLI::App* cmd =
      app.add_subcommand("info", "Show a model's layers, shapes, MACs, parameters and size");
  cmd->add_option("model", *path, ".mpdet file")->required();
  cmd->add_flag("--brief", *brief, "Summary only, no per-layer table");
  return [path, brief]() {
    const model::Model m = model::load_model(*path);
    std::printf("model    %s (from %s)\n", m.name.c_str(), m.source.c_str());
    std::printf("input    %dx%d, %s, scale %.6g, %s resize\n", m.preprocess.width,
                m.preprocess.height, m.preprocess.rgb ? "RGB" : "BGR", m.preprocess.scale,
                m.preprocess.letterbox ? "letterbox" : "stretch");
    if (!*brief) {
      std::printf("\n%4s  %-18s %-20s %-12s %-14s %12s %10s\n", "#", "name", "kind", "inputs",
                  "output", "MACs", "params");
      for (std::size_t i = 0; i < m.layers.size(); ++i) {
        const model::Layer& l = m.layers[i];
        std::string inputs;
        for (int in : l.inputs) inputs += (inputs.empty() ? "" : ",") + std::to_string(in);
        std::string kind = model::to_string(l.kind);
        if (l.kind == model::LayerKind::Conv2d) {
          kind = std::to_string(l.conv.kernel) + "x" + std::to_string(l.conv.kernel) +
                 (l.conv.groups > 1 ? (l.conv.groups == l.conv.out_channels ? " dw" : " g") : "") +
                 (l.conv.stride > 1 ? " /" + std::to_string(l.conv.stride) : "");
        }
        const std::string shape = std::to_string(l.output.channels) + "x" +
                                  std::to_string(l.output.height) + "x" +
                                  std::to_string(l.output.width);
        long long params = 0;
        if (l.kind == model::LayerKind::Conv2d && !m.quantized)
          params = static_cast<long long>(m.tensors[l.weight_tensor].elements() +
                                          m.tensors[l.bias_tensor].elements());
        if (l.kind == model::LayerKind::Conv2d && m.quantized) {
          params = static_cast<long long>(m.tensors[l.weight_quant.weights].elements());
          char q[32];
          std::snprintf(q, sizeof q, " w%d x%.2f", l.weight_quant.weight_bits,
                        double(l.weight_quant.virtual_channels()) / l.conv.out_channels);
          kind += q;
        }
        std::printf("%4zu  %-18s %-20s %-12s %-14s %12lld %10lld\n", i, l.name.c_str(),
                    kind.c_str(), inputs.c_str(), shape.c_str(),
                    static_cast<long long>(model::conv_macs(m, l)), params);
      }
      std::printf("\n");
    }
    std::printf("layers   %zu\n", m.layers.size());
    if (m.quantized) {
      // Points histogram over all output channels, effective storage bits per float weight, and
      // the executed-MAC overhead of the extra points.
      std::map<std::string, long long> histogram;
      double float_macs = 0, executed = 0, weights = 0, stored_bits = 0;
      for (const model::Layer& l : m.layers) {
        if (l.kind != model::LayerKind::Conv2d) continue;
        const auto& wq = l.weight_quant;
        for (int p : wq.points)
          ++histogram["w" + std::to_string(wq.weight_bits) + " x" + std::to_string(p)];
        float_macs += model::conv_macs(m, l);
        executed += model::executed_macs(m, l);
        const double per_channel = double(m.tensors[wq.weights].elements()) / wq.virtual_channels();
        weights += per_channel * l.conv.out_channels;
        stored_bits +=
            per_channel * wq.virtual_channels() * wq.weight_bits + 32.0 * wq.virtual_channels();
      }
      std::printf("quant    %s\n", m.quantization_method.c_str());
      std::printf("points   ");
      for (const auto& [k, n] : histogram) std::printf("%s: %lld  ", k.c_str(), n);
      std::printf("(output channels)\n");
      std::printf("bits     %.3f effective bits per weight (codes + point scales)\n",
                  stored_bits / weights);
      std::printf(
          "MACs     %.4f G executed = %.4f x float MACs (points per weight, MAC-weighted)\n",
          executed / 1e9, executed / float_macs);
    }
    std::printf("MACs     %.4f G (one point per weight)\n", model::total_macs(m) / 1e9);
    if (m.quantized)
      std::printf("tensors  %lld values (codes, point scales, biases)\n",
                  static_cast<long long>(model::total_parameters(m)));
    else
      std::printf("params   %lld (%.2f MB as float32)\n",
                  static_cast<long long>(model::total_parameters(m)),
                  model::total_parameters(m) * 4 / 1e6);
    std::printf("file     %lld bytes\n", static_cast<long long>(std::filesystem::file_size(*path)));
    std::printf("heads    %zu YOLO heads, %zu classes:", m.postprocess.yolo_heads.size(),
                m.class_names.size());
    for (const auto& c : m.class_names) std::printf(" %s", c.c_str());
    std::printf("\n");
    return 0;
  };
}

}  // namespace mpdet::tools
