// A client of a running node: appends events, waits until they are
// acknowledged (committed), then replays them.
//
//   embed_client HOST:PORT
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "ringlog/client.h"

namespace {

constexpr int kEvents = 1000;

uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "embed_client: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: embed_client HOST:PORT\n");
    return 2;
  }
  auto client = ringlog::Client::Connect({.endpoints = {argv[1]}});
  if (!client.ok()) return fail("connect", client.status());

  auto appender = (*client)->appender();
  if (!appender.ok()) return fail("appender", appender.status());
  for (int i = 0; i < kEvents; ++i) {
    const std::string payload = "event " + std::to_string(i);
    absl::Status s = (*appender)->append(/*event_type=*/1, now_ns(), ringlog::as_bytes(payload));
    if (!s.ok()) return fail("append", s);
  }
  absl::StatusOr<ringlog::Ack> last = (*appender)->drain();  // all acknowledged
  if (!last.ok()) return fail("drain", last.status());
  if (absl::Status s = (*appender)->close(); !s.ok()) return fail("close", s);

  ringlog::ReplayOptions r;
  r.from_seq = last->last_seq + 1 - kEvents;
  r.limit = kEvents;
  std::unique_ptr<ringlog::Replayer> replayer = (*client)->replay(r);
  int replayed = 0;
  while (auto ev = replayer->next()) {
    const std::string expected = "event " + std::to_string(replayed);
    const auto* p = reinterpret_cast<const char*>(ev->view.payload.data());
    if (std::string(p, ev->view.payload.size()) != expected) {
      std::fprintf(stderr, "embed_client: seq %llu is not \"%s\"\n",
                   static_cast<unsigned long long>(ev->seq), expected.c_str());
      return 1;
    }
    ++replayed;
  }
  if (!replayer->status().ok()) return fail("replay", replayer->status());
  std::printf("embed_client: appended %d events up to seq %llu, replayed %d\n", kEvents,
              static_cast<unsigned long long>(last->last_seq), replayed);
  return replayed == kEvents ? 0 : 1;
}
