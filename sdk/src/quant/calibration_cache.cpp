#include "quant/calibration_cache.h"

#include <cstring>
#include <fstream>
#include <type_traits>
#include <vector>

#include "model/model_file.h"
#include "mpdet/error.h"

namespace mpdet::quant {
namespace {

constexpr char kMagic[8] = {'M', 'P', 'D', 'C', 'A', 'L', 'I', 'B'};
constexpr std::size_t kHeaderBytes = 48;

// Incremental FNV-1a 64 over the bytes of plain values.
class Hasher {
 public:
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < n; ++i) hash_ = (hash_ ^ p[i]) * 0x100000001b3ull;
  }
  template <typename T>
  void value(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&v, sizeof v);
  }
  void text(const std::string& s) {
    value(s.size());
    bytes(s.data(), s.size());
  }
  std::uint64_t digest() const { return hash_; }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ull;
};

class Writer {
 public:
  template <typename T>
  void value(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof v);
  }
  template <typename T>
  void array(const std::vector<T>& v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
    bytes_.insert(bytes_.end(), p, p + v.size() * sizeof(T));
  }
  std::vector<std::uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

class Reader {
 public:
  Reader(std::span<const std::uint8_t> bytes, std::string where)
      : bytes_(bytes), where_(std::move(where)) {}
  template <typename T>
  T value() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  template <typename T>
  void array(std::vector<T>& v, std::size_t n) {
    if (n > (bytes_.size() - offset_) / sizeof(T)) fail();
    v.resize(n);
    take(v.data(), n * sizeof(T));
  }
  bool at_end() const { return offset_ == bytes_.size(); }
  [[noreturn]] void fail() const {
    throw Error(where_ + ": calibration cache payload is inconsistent (corrupt file?)");
  }

 private:
  void take(void* out, std::size_t n) {
    if (n > bytes_.size() - offset_) fail();
    if (n == 0) return;  // an empty array has no storage to copy into (memcpy needs non-null)
    std::memcpy(out, bytes_.data() + offset_, n);
    offset_ += n;
  }
  std::span<const std::uint8_t> bytes_;
  std::size_t offset_ = 0;
  std::string where_;
};

std::uint64_t read_u64(const std::vector<std::uint8_t>& b, std::size_t at) {
  std::uint64_t v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

}  // namespace

std::uint64_t calibration_fingerprint(const model::Model& m) {
  if (m.quantized) throw Error("a calibration fingerprint needs the float model");
  Hasher h;
  h.value(m.layers.size());
  for (const model::Layer& l : m.layers) {
    h.value(static_cast<int>(l.kind));
    h.value(l.inputs.size());
    for (int i : l.inputs) h.value(i);
    h.value(l.output);
    h.value(static_cast<int>(l.activation));
    h.value(l.conv);
    h.value(l.pool);
    h.value(l.upsample_factor);
    h.value(l.weight_tensor);
    h.value(l.bias_tensor);
  }
  h.value(m.tensors.size());
  for (const model::Tensor& t : m.tensors) {
    h.value(t.shape.size());
    for (std::int64_t d : t.shape) h.value(d);
    h.value(t.data.size());
    h.bytes(t.data.data(), t.data.size() * sizeof(float));
  }
  const model::PreprocessSettings& p = m.preprocess;
  h.value(p.width);
  h.value(p.height);
  h.value(p.rgb);
  h.value(p.scale);
  h.value(p.mean);
  h.value(p.letterbox);
  return h.digest();
}

std::uint64_t settings_fingerprint(const std::string& description) {
  Hasher h;
  h.text(description);
  return h.digest();
}

void save_calibration(const CalibrationData& data, const CalibrationKey& key,
                      const std::filesystem::path& path) {
  const std::size_t n = data.min.size();
  if (data.max.size() != n || data.histograms.size() != n || data.grams.size() != n)
    throw Error("calibration data is inconsistent: per-layer vectors differ in length");
  Writer payload;
  payload.value(static_cast<std::uint64_t>(data.images));
  payload.value(static_cast<std::uint64_t>(n));
  for (std::size_t l = 0; l < n; ++l) {
    payload.value(data.min[l]);
    payload.value(data.max[l]);
    const bool has_histogram = data.histograms[l].has_value();
    payload.value(static_cast<std::uint8_t>(has_histogram));
    if (has_histogram) {
      const Histogram& hist = *data.histograms[l];
      payload.value(hist.lo());
      payload.value(hist.hi());
      payload.value(static_cast<std::uint64_t>(hist.counts().size()));
      payload.array(hist.counts());
    }
    const std::vector<float> none;
    const std::vector<float>& cmax = l < data.channel_max.size() ? data.channel_max[l] : none;
    const std::vector<float>& eq = l < data.equalization.size() ? data.equalization[l] : none;
    payload.value(static_cast<std::uint64_t>(cmax.size()));
    payload.array(cmax);
    payload.value(static_cast<std::uint64_t>(eq.size()));
    payload.array(eq);
    const ConvGram& g = data.grams[l];
    payload.value(static_cast<std::int32_t>(g.groups));
    payload.value(static_cast<std::int32_t>(g.taps));
    payload.value(static_cast<std::uint64_t>(g.samples));
    payload.array(g.values);
    payload.array(g.sums);
  }
  Writer file;
  for (char c : kMagic) file.value(c);
  file.value(kCalibrationCacheVersion);
  file.value(std::uint32_t{0});
  file.value(key.model);
  file.value(key.settings);
  file.value(static_cast<std::uint64_t>(payload.bytes().size()));
  file.value(model::fnv1a64(payload.bytes()));
  file.bytes().insert(file.bytes().end(), payload.bytes().begin(), payload.bytes().end());
  model::write_file_atomically(path, file.bytes());
}

CalibrationData load_calibration(const std::filesystem::path& path, const CalibrationKey& key) {
  std::string where = "'";
  where += path.string();
  where += '\'';
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(where + ": cannot open the calibration cache");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw Error(where + ": not an mpdet calibration cache (bad magic or truncated header)");
  std::uint32_t version;
  std::memcpy(&version, bytes.data() + 8, sizeof version);
  if (version != kCalibrationCacheVersion)
    throw Error(where + ": calibration cache format version " + std::to_string(version) +
                ", this build reads version " + std::to_string(kCalibrationCacheVersion) +
                "; delete the file to recalibrate");
  const std::uint64_t payload_size = read_u64(bytes, 32);
  if (payload_size != bytes.size() - kHeaderBytes)
    throw Error(where + ": calibration cache is truncated or has trailing bytes (" +
                std::to_string(bytes.size() - kHeaderBytes) + " payload bytes, header says " +
                std::to_string(payload_size) + ")");
  const std::span<const std::uint8_t> payload(bytes.data() + kHeaderBytes, payload_size);
  if (model::fnv1a64(payload) != read_u64(bytes, 40))
    throw Error(where +
                ": calibration cache checksum mismatch (corrupt file); delete it to "
                "recalibrate");
  if (read_u64(bytes, 16) != key.model)
    throw Error(where +
                ": calibration cache was made for a different model (stale cache); "
                "delete it or pass another --calib-cache file");
  if (read_u64(bytes, 24) != key.settings)
    throw Error(where +
                ": calibration cache was made with other calibration images or settings "
                "(stale cache); delete it or pass another --calib-cache file");

  Reader r(payload, where);
  CalibrationData data;
  data.images = r.value<std::uint64_t>();
  const std::uint64_t n = r.value<std::uint64_t>();
  if (n > payload_size) r.fail();
  data.min.resize(n);
  data.max.resize(n);
  data.histograms.resize(n);
  data.grams.resize(n);
  data.channel_max.resize(n);
  data.equalization.resize(n);
  for (std::size_t l = 0; l < n; ++l) {
    data.min[l] = r.value<float>();
    data.max[l] = r.value<float>();
    const auto has_histogram = r.value<std::uint8_t>();
    if (has_histogram > 1) r.fail();
    if (has_histogram) {
      const float lo = r.value<float>(), hi = r.value<float>();
      const auto bins = r.value<std::uint64_t>();
      if (bins < 1 || bins > (1u << 24)) r.fail();
      std::vector<std::uint64_t> counts;
      r.array(counts, bins);
      try {
        data.histograms[l].emplace(lo, hi, static_cast<int>(bins));
      } catch (const Error&) {
        r.fail();
      }
      data.histograms[l]->set_counts(std::move(counts));
    }
    r.array(data.channel_max[l], r.value<std::uint64_t>());
    r.array(data.equalization[l], r.value<std::uint64_t>());
    ConvGram& g = data.grams[l];
    g.groups = r.value<std::int32_t>();
    g.taps = r.value<std::int32_t>();
    g.samples = r.value<std::uint64_t>();
    if (g.groups < 0 || g.taps < 0 || (g.groups == 0) != (g.taps == 0)) r.fail();
    const std::uint64_t sums = std::uint64_t(g.groups) * std::uint64_t(g.taps);
    if (sums > payload_size) r.fail();
    r.array(g.values, sums * std::uint64_t(g.taps));
    r.array(g.sums, sums);
  }
  if (!r.at_end()) r.fail();
  return data;
}

}  // namespace mpdet::quant
