// Errors raised by the mpdet C++ API. Every failure caused by input (a file, an image, an
// option) is reported as mpdet::Error with a message that names the input and the problem.
#pragma once

#include <stdexcept>
#include <string>

namespace mpdet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace mpdet
