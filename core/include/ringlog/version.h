// The version a binary was built from, for `--version` and NodeStatus.version.
#pragma once

#include <string>

namespace ringlog {

// The project's version, as CMake's project(VERSION) says: "0.1.0".
const char* project_version();

// The git revision of the source tree when it was built (`git describe
// --always --dirty`: "11f65ef", "11f65ef-dirty"), or "unknown" when it was
// not built from a git checkout.
const char* git_revision();

// Both, as the binaries print them: "0.1.0 (git 11f65ef)".
std::string version_string();

}  // namespace ringlog
