// The model file's preprocessing settings as the vision module's spec (one conversion, used by
// the Detector and by tools that feed networks directly, e.g. calibration).
#pragma once

#include "model/graph.h"
#include "vision/preprocess.h"

namespace mpdet::api {

inline vision::PreprocessSpec to_preprocess_spec(const model::PreprocessSettings& pre,
                                                 bool letterbox) {
  vision::PreprocessSpec spec;
  spec.width = pre.width;
  spec.height = pre.height;
  spec.channel_order = pre.rgb ? vision::ChannelOrder::RGB : vision::ChannelOrder::BGR;
  spec.scale = pre.scale;
  spec.mean = pre.mean;
  spec.resize = letterbox ? vision::ResizeMode::Letterbox : vision::ResizeMode::Stretch;
  return spec;
}

}  // namespace mpdet::api
