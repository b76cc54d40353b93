// Applying one chunk from the primary to a replica's log: the step of
// replication that decides what a replica writes.
//
//   absl::StatusOr<LogPosition> first = apply_chunk(log, resp.chunk());
//   if (!first.ok()) ...  // nothing was written; end the stream
//
// A chunk is taken only whole: every record's checksum is checked first, and
// the chunk must start where the log ends or, carrying a segment header,
// start the segment that header describes (the replica then seals its active
// segment and starts this one byte for byte, so its files stay identical to
// the primary's). A bad chunk changes nothing, not even a segment. Called by
// the log's one writer (the follower thread).
#pragma once

#include "absl/status/statusor.h"
#include "ringlog/storage.h"
#include "ringlog/v1/ringlog.pb.h"

namespace ringlog {

// Appends the chunk's records to `log`, returning where they begin (the log's
// end when the chunk has none). DataLoss for a corrupt record or segment
// header (or a segment too small for the chunk), FailedPrecondition for a
// chunk that does not start at the log's end or does not fit in its segment.
absl::StatusOr<LogPosition> apply_chunk(SegmentedLog& log, const v1::Chunk& chunk);

}  // namespace ringlog
