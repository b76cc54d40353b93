// RINGLOG_RETURN_IF_ERROR: this Abseil has no ABSL_RETURN_IF_ERROR.
#pragma once

#include "absl/status/status.h"

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RINGLOG_RETURN_IF_ERROR(expr)              \
  do {                                             \
    if (::absl::Status _st = (expr); !_st.ok()) {  \
      return _st;                                  \
    }                                              \
  } while (0)
