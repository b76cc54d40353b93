// Writes the seed inputs in fuzz/corpus/<target>/ from valid data made with
// the library itself: make_corpus DIR (the corpus folder). The seeds change
// only when the formats do; rerun it then.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "ringlog/segmented_log.h"
#include "ringlog/v1/ringlog.pb.h"

namespace {

namespace v1 = ringlog::v1;

std::string corpus;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(corpus + "/" + target);
  std::ofstream(corpus + "/" + target + "/" + name, std::ios::binary) << bytes;
}

std::string record(uint64_t ts, uint8_t type, const std::string& payload, uint8_t flags = 0) {
  ringlog::EventHeader h;
  h.timestamp = ts;
  h.event_type = type;
  h.flags = flags;
  h.payload_len = static_cast<uint16_t>(payload.size());
  std::string out(ringlog::padded_size(payload.size()), '\0');
  ringlog::encode_record(reinterpret_cast<std::byte*>(out.data()), h, ringlog::as_bytes(payload));
  return out;
}

std::string batch() {
  return record(1000, 1, "first") + record(1010, 2, "") + record(1020, 3, "a longer payload here");
}

std::string with_switches(uint8_t switches, const std::string& bytes) {
  return std::string(1, static_cast<char>(switches)) + bytes;
}

// A segment file as the log writes it, cut after its records and 32 zeros.
std::string segment_file() {
  ringlog::LogOptions o;
  o.segment_bytes = ringlog::kFileHeaderSize + ringlog::kMaxRecordSize;
  o.prepare_ahead = false;
  o.warm_bytes = 0;
  const std::string& dir = ringlog::fuzz::fresh_dir("corpus");
  uint64_t end = 0;
  {
    auto log = ringlog::SegmentedLog::Open(dir, o);
    if (!log.ok() || !(*log)->append(ringlog::as_bytes(batch())).status.ok()) std::abort();
    if (!(*log)->sync().ok()) std::abort();
    end = (*log)->end().offset;
  }
  std::ifstream in(dir + "/00000000000000000000.evtl", std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return file.substr(0, ringlog::kFileHeaderSize + end + 32);
}

std::string segment_header(uint64_t base_offset, uint64_t base_seq,
                           uint64_t file_size = ringlog::kFileHeaderSize + ringlog::kMaxRecordSize) {
  ringlog::FileHeader h;
  h.base_offset = base_offset;
  h.base_seq = base_seq;
  h.file_size = file_size;
  h.fill_checksum();
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

std::string message(uint8_t kind, const google::protobuf::MessageLite& m) {
  return std::string(1, static_cast<char>(kind)) + m.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus CORPUS_DIR\n");
    return 2;
  }
  corpus = argv[1];

  put("validate_batch", "batch", batch());
  put("validate_batch", "one", record(7, 0, "x"));
  put("validate_batch", "torn", batch().substr(0, 40));

  const std::string file = segment_file();
  put("segment_recovery", "valid", with_switches(0, file));
  put("segment_recovery", "torn_tail", with_switches(3, file.substr(0, file.size() - 40)));
  put("segment_recovery", "header_only", with_switches(1, file.substr(0, ringlog::kFileHeaderSize)));
  put("segment_recovery", "two_files",
      with_switches(0x0d, std::string(1, static_cast<char>(file.size() / 8)) + file + file));

  // The fuzz target's log holds three records of 48 bytes: it ends at offset 144, seq 3.
  v1::Chunk chunk;
  chunk.set_start_offset(144);
  chunk.set_start_seq(3);
  chunk.set_records(batch());
  put("apply_chunk", "at_end", with_switches(0, chunk.SerializeAsString()));
  chunk.mutable_segment()->set_header(segment_header(144, 3));
  put("apply_chunk", "new_segment", with_switches(0, chunk.SerializeAsString()));
  chunk.mutable_segment()->set_header(segment_header(144, 3, ringlog::kFileHeaderSize + 64));
  put("apply_chunk", "segment_too_small", with_switches(0, chunk.SerializeAsString()));
  chunk.clear_segment();
  chunk.set_start_offset(96);
  put("apply_chunk", "gap", with_switches(0, chunk.SerializeAsString()));

  v1::AppendRequest append;
  append.set_records(batch());
  append.set_batch_id(1);
  append.set_producer_id("producer-1");
  append.set_producer_seq(1);
  put("requests", "append", message(0, append));
  v1::ReplayRequest replay;
  replay.set_from_seq(5);
  replay.add_event_types(1);
  replay.add_event_types(2);
  replay.set_limit(10);
  put("requests", "replay_filtered", message(1, replay));
  replay = {};
  replay.set_from_timestamp(1200);
  replay.set_max_batch_bytes(70000);
  put("requests", "replay_time", message(1, replay));
  replay = {};
  replay.set_from_end(true);
  replay.set_follow(true);
  put("requests", "replay_end", message(1, replay));
  v1::FollowRequest follow;
  v1::FollowHello* hello = follow.mutable_hello();
  hello->set_node_id("replica-1");
  hello->set_log_end_offset(4000);
  hello->set_log_end_seq(20);
  v1::EpochEntry* e = hello->add_epochs();
  e->set_epoch(1);
  e = hello->add_epochs();
  e->set_epoch(2);
  e->set_start_offset(2000);
  put("requests", "follow_hello", message(2, follow));
  v1::PromoteRequest promote;
  promote.set_force(true);
  promote.add_peers("10.0.0.2:7400");
  put("requests", "promote", message(3, promote));
  v1::FollowCommand command;
  command.set_primary("10.0.0.1:7400");
  put("requests", "follow_command", message(4, command));
  put("requests", "status", message(5, v1::GetStatusRequest()));
  return 0;
}
