// Storage: memory-mapped segment files and the segmented log over a directory.
// Byte-level spec: docs/format.md. Each part has its own header:
//
//   file_header.h    the 64-byte segment file header, RecoveryReport
//   log_position.h   LogPosition, AtomicPosition
//   mmap_file.h      MmapWriter, MmapReader: one file, the seed's interface
//   segmented_log.h  SegmentedLog: the log over a directory of segment files
//   log_reader.h     LogReader: reads a SegmentedLog in order
//
// This header includes them all.
#pragma once

#include "ringlog/file_header.h"
#include "ringlog/log_position.h"
#include "ringlog/log_reader.h"
#include "ringlog/mmap_file.h"
#include "ringlog/segmented_log.h"
