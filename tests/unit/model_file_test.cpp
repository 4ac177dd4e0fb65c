// .mpdet round trip, and every kind of damage gives a clear mpdet::Error (never a crash).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "import/darknet_importer.h"
#include "model/model_file.h"
#include "mpdet/error.h"
#include "tiny_darknet.h"

namespace {

using namespace mpdet::model;

Model tiny_model() {
  return mpdet::import::import_darknet_from_memory(
      mpdet::test::kTinyCfg, mpdet::test::tiny_weights(), {"cat", "dog"}, "tiny");
}

std::string error_of(const std::vector<std::uint8_t>& bytes) {
  try {
    deserialize_model(bytes);
  } catch (const mpdet::Error& e) {
    return e.what();
  }
  return "";
}

// Re-serialises a file after editing its JSON, with a correct checksum, so that the semantic
// checks (not the checksum) must catch the edit.
std::vector<std::uint8_t> with_edited_json(const std::vector<std::uint8_t>& file,
                                           const std::function<void(nlohmann::json&)>& edit) {
  auto get_u64 = [&](std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(file[at + i]) << (8 * i);
    return v;
  };
  const std::uint64_t json_size = get_u64(16), data_offset = get_u64(24);
  nlohmann::json doc = nlohmann::json::parse(file.begin() + 64, file.begin() + 64 + json_size);
  edit(doc);
  std::string text = doc.dump();
  if (text.size() > data_offset - 64) throw std::runtime_error("edited JSON does not fit");
  std::vector<std::uint8_t> out = file;
  std::fill(out.begin() + 64, out.begin() + data_offset, 0);
  std::copy(text.begin(), text.end(), out.begin() + 64);
  for (int i = 0; i < 8; ++i) out[16 + i] = static_cast<std::uint8_t>(text.size() >> (8 * i));
  const std::uint64_t sum = fnv1a64(std::span(out).subspan(64));
  for (int i = 0; i < 8; ++i) out[40 + i] = static_cast<std::uint8_t>(sum >> (8 * i));
  return out;
}

TEST(ModelFile, RoundTripIsExact) {
  const Model m = tiny_model();
  const auto bytes = serialize_model(m);
  const Model back = deserialize_model(bytes);
  ASSERT_EQ(back.layers.size(), m.layers.size());
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    EXPECT_EQ(back.layers[i].name, m.layers[i].name);
    EXPECT_EQ(back.layers[i].kind, m.layers[i].kind);
    EXPECT_EQ(back.layers[i].inputs, m.layers[i].inputs);
    EXPECT_EQ(back.layers[i].output, m.layers[i].output);
    EXPECT_EQ(back.layers[i].activation, m.layers[i].activation);
  }
  ASSERT_EQ(back.tensors.size(), m.tensors.size());
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    EXPECT_EQ(back.tensors[i].shape, m.tensors[i].shape);
    EXPECT_EQ(back.tensors[i].data, m.tensors[i].data);  // bit-exact floats
  }
  EXPECT_EQ(back.class_names, m.class_names);
  EXPECT_EQ(back.outputs, m.outputs);
  EXPECT_EQ(back.postprocess.yolo_heads[0].anchors, m.postprocess.yolo_heads[0].anchors);
  EXPECT_EQ(serialize_model(back), bytes) << "serialisation is deterministic";
}

TEST(ModelFile, TensorsAre64ByteAligned) {
  const auto bytes = serialize_model(tiny_model());
  std::uint64_t data_offset = 0;
  for (int i = 0; i < 8; ++i) data_offset |= std::uint64_t(bytes[24 + i]) << (8 * i);
  EXPECT_EQ(data_offset % 64, 0u);
  const auto doc = nlohmann::json::parse(
      bytes.begin() + 64, bytes.begin() + 64 + (data_offset - 64) - 0, nullptr, false);
  // JSON is followed by zero padding up to the data block; parse only up to its declared size.
  std::uint64_t json_size = 0;
  for (int i = 0; i < 8; ++i) json_size |= std::uint64_t(bytes[16 + i]) << (8 * i);
  const auto parsed = nlohmann::json::parse(bytes.begin() + 64, bytes.begin() + 64 + json_size);
  for (const auto& t : parsed["tensors"]) EXPECT_EQ(t["offset"].get<std::uint64_t>() % 64, 0u);
}

TEST(ModelFile, EveryTruncationIsAClearError) {
  const auto bytes = serialize_model(tiny_model());
  for (std::size_t size = 0; size < bytes.size(); size += (size < 200 ? 1 : 97)) {
    const std::string error = error_of({bytes.begin(), bytes.begin() + size});
    EXPECT_FALSE(error.empty()) << "truncated to " << size << " bytes was accepted";
  }
  EXPECT_NE(error_of({bytes.begin(), bytes.begin() + bytes.size() - 1}).find("truncated"),
            std::string::npos);
}

TEST(ModelFile, BitFlipsAreCaught) {
  const auto bytes = serialize_model(tiny_model());
  std::mt19937 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    auto damaged = bytes;
    const std::size_t at = rng() % damaged.size();
    damaged[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    EXPECT_FALSE(error_of(damaged).empty()) << "flip at byte " << at << " went unnoticed";
  }
}

TEST(ModelFile, HeaderProblemsAreNamed) {
  auto bytes = serialize_model(tiny_model());
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_NE(error_of(bad_magic).find("magic"), std::string::npos);
  auto bad_version = bytes;
  bad_version[8] = 99;
  EXPECT_NE(error_of(bad_version).find("version"), std::string::npos);
  auto trailing = bytes;
  trailing.push_back(0);
  EXPECT_NE(error_of(trailing).find("trailing"), std::string::npos);
  auto bad_sum = bytes;
  bad_sum.back() ^= 1;
  EXPECT_NE(error_of(bad_sum).find("checksum"), std::string::npos);
}

TEST(ModelFile, SemanticDamageBehindAValidChecksumIsCaught) {
  const auto bytes = serialize_model(tiny_model());
  struct Edit {
    const char* expect;
    std::function<void(nlohmann::json&)> edit;
  };
  const Edit edits[] = {
      {"layer kind", [](auto& d) { d["layers"][1]["kind"] = "softmax"; }},
      {"activation", [](auto& d) { d["layers"][1]["activation"] = "gelu"; }},
      {"not an earlier layer", [](auto& d) { d["layers"][2]["inputs"] = {5}; }},
      {"inferred",
       [](auto& d) {
         d["layers"][1]["output"] = {8, 17, 16};
       }},
      {"wrong shape", [](auto& d) { d["layers"][1]["weights"] = 3; }},
      {"outside the data block", [](auto& d) { d["tensors"][0]["offset"] = 1u << 30; }},
      {"aligned", [](auto& d) { d["tensors"][0]["offset"] = 4; }},
      {"does not match its shape", [](auto& d) { d["tensors"][0]["size"] = 4; }},
      {"invalid dimension",
       [](auto& d) {
         d["tensors"][0]["shape"] = {-8, 3};
       }},
      {"too large",
       [](auto& d) {
         d["tensors"][0]["shape"] = {1 << 20, 1 << 20, 4};
       }},
      {"missing field 'kernel'", [](auto& d) { d["layers"][1].erase("kernel"); }},
      {"must be an integer", [](auto& d) { d["layers"][1]["stride"] = "two"; }},
      {"out of range", [](auto& d) { d["layers"][1]["weights"] = 1000; }},
      {"class count", [](auto& d) { d["postprocess"]["yolo_heads"][0]["num_classes"] = 3; }},
      {"class", [](auto& d) { d["classes"] = {"only-one"}; }},
      {"anchors",
       [](auto& d) {
         d["postprocess"]["yolo_heads"][0]["anchors"] = {1, 2, 3};
       }},
      {"channel_order", [](auto& d) { d["preprocess"]["channel_order"] = "yuv"; }},
      {"missing layer", [](auto& d) { d["outputs"] = {100}; }},
  };
  for (const Edit& e : edits) {
    const std::string error = error_of(with_edited_json(bytes, e.edit));
    EXPECT_NE(error.find(e.expect), std::string::npos)
        << "expected '" << e.expect << "', got '" << error << "'";
  }
}

TEST(ModelFile, SaveIsAtomicAndLoadNamesTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / "mpdet_model_file_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "tiny.mpdet";
  save_model(tiny_model(), path);
  EXPECT_EQ(load_model(path).layers.size(), 9u);
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename(), "tiny.mpdet") << "temporary file left behind";
  // A failed write (directory missing) leaves nothing behind and names the file.
  try {
    save_model(tiny_model(), dir / "missing" / "x.mpdet");
    ADD_FAILURE();
  } catch (const mpdet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.mpdet"), std::string::npos);
  }
  try {
    load_model(dir / "absent.mpdet");
    ADD_FAILURE();
  } catch (const mpdet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.mpdet"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
