// Small helpers over POSIX calls for the storage code.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "ringlog/status_macros.h"


namespace ringlog::internal {

// A status for a failed system call: ENOSPC and EDQUOT are RESOURCE_EXHAUSTED
// (a full disk), the rest by meaning; the message names what and where.
inline absl::Status errno_status(int err, absl::string_view what, absl::string_view path) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    case ENOENT:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Copies the file `from` to a new file `to` (kernel-side copy), synced.
absl::Status copy_file(const std::string& from, const std::string& to);

}  // namespace ringlog::internal
