// ringlogd: a ringlog node (primary or replica).
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <algorithm>
#include <cstdlib>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "metrics.h"
#include "node.h"
#include "services.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, data_dir, "./data", "directory of the log (created if missing)");
ABSL_FLAG(std::string, listen, "127.0.0.1:7400", "gRPC address; port 0 picks a free port");
ABSL_FLAG(std::string, advertise, "",
          "the address others reach this node at (default: --listen, with the port chosen)");
ABSL_FLAG(std::string, port_file, "", "write the port listened on to this file once serving");
ABSL_FLAG(std::string, node_id, "", "node id (default: kept in <data_dir>/NODE_ID)");
ABSL_FLAG(std::string, role, "primary", "primary or replica");
ABSL_FLAG(std::string, primary, "", "replica: HOST:PORT of the primary to follow");
ABSL_FLAG(std::vector<std::string>, peers, {},
          "the other nodes, HOST:PORT,...: a primary that finds one of them primary in a later "
          "epoch follows it (also at start); promotion checks their logs");
ABSL_FLAG(uint64_t, segment_bytes, uint64_t{256} << 20, "size of each segment file");
ABSL_FLAG(uint64_t, ring_bytes, uint64_t{64} << 20, "ring capacity, a power of two");
ABSL_FLAG(std::string, fsync, "none",
          "when the log is flushed to disk: none (the kernel decides), batch (after every "
          "batch), or an interval such as 10ms");
ABSL_FLAG(uint64_t, max_batch_bytes, uint64_t{4} << 20, "largest Append request batch");
ABSL_FLAG(uint32_t, min_replica_acks, 0,
          "replicas that must have a batch durable before it is acknowledged");
ABSL_FLAG(uint64_t, retention_bytes, 0, "keep at most this many bytes of log (0: no limit)");
ABSL_FLAG(absl::Duration, retention_age, absl::InfiniteDuration(),
          "drop segments whose newest event is older than this (e.g. 168h)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");
ABSL_FLAG(std::string, metrics_listen, "",
          "serve Prometheus metrics at http://HOST:PORT/metrics (empty: off)");
ABSL_FLAG(std::string, config, "",
          "a file of flag settings, one \"name = value\" per line (# comments); the "
          "environment (RINGLOG_<NAME>) overrides it, and the command line both");

namespace {

ringlog::NodeOptions options_from_flags() {
  ringlog::NodeOptions o;
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  o.listen = absl::GetFlag(FLAGS_listen);
  o.node_id = absl::GetFlag(FLAGS_node_id);
  o.primary = absl::GetFlag(FLAGS_primary);
  o.peers = absl::GetFlag(FLAGS_peers);
  o.pipeline.ring_bytes = absl::GetFlag(FLAGS_ring_bytes);
  o.pipeline.log.segment_bytes = absl::GetFlag(FLAGS_segment_bytes);
  o.pipeline.log.retention_bytes = absl::GetFlag(FLAGS_retention_bytes);
  o.pipeline.log.retention_age = absl::GetFlag(FLAGS_retention_age);
  o.max_request_bytes = absl::GetFlag(FLAGS_max_batch_bytes);
  o.min_replica_acks = absl::GetFlag(FLAGS_min_replica_acks);
  return o;
}

int fail(const std::string& msg) {
  spdlog::critical("{}", msg);
  return 1;
}

// This program's own flags (not those of the libraries).
std::vector<absl::CommandLineFlag*> own_flags() {
  std::vector<absl::CommandLineFlag*> out;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "server/main.cc")) out.push_back(flag);
  }
  std::sort(out.begin(), out.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  return out;
}

// Sets flags from the config file named on the command line, then from the
// environment; the command line, parsed after, overrides both.
absl::Status apply_config_and_env(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (absl::StartsWith(a, "--config=")) path = a.substr(9);
    if (a == "--config" && i + 1 < argc) path = argv[i + 1];
  }
  if (const char* e = std::getenv("RINGLOG_CONFIG"); path.empty() && e != nullptr) path = e;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError("cannot read config file " + path);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (l.empty() || l[0] == '#') continue;
      if (absl::ConsumePrefix(&l, "--")) {
      }
      const size_t eq = l.find_first_of("=:");
      if (eq == absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrFormat("%s:%d: expected name = value", path, n));
      }
      const std::string name(absl::StripAsciiWhitespace(l.substr(0, eq)));
      const std::string value(absl::StripAsciiWhitespace(l.substr(eq + 1)));
      absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
      std::string err;
      if (f == nullptr) return absl::InvalidArgumentError(absl::StrFormat("%s:%d: no flag --%s", path, n, name));
      if (!f->ParseFrom(value, &err)) {
        return absl::InvalidArgumentError(absl::StrFormat("%s:%d: --%s: %s", path, n, name, err));
      }
    }
  }
  for (absl::CommandLineFlag* f : own_flags()) {
    std::string env = "RINGLOG_" + absl::AsciiStrToUpper(f->Name());
    if (const char* v = std::getenv(env.c_str()); v != nullptr && f->Name() != "config") {
      std::string err;
      if (!f->ParseFrom(v, &err)) {
        return absl::InvalidArgumentError(absl::StrFormat("%s: %s", env, err));
      }
    }
  }
  return absl::OkStatus();
}

// Replication and replay move megabyte messages through gRPC, which
// allocates a buffer for each one it receives or sends. By default glibc
// serves such sizes with fresh mmaps (or trims them off the heap when
// freed), so every message paid for zeroing and faulting in new pages:
// about a quarter of a replica's CPU during catch-up. Keep them on the heap
// instead, and keep up to 128 MiB of freed heap per arena for reuse (the
// node's own memory, bounded by the flow-control windows, is of that order).
void keep_large_buffers_on_heap() {
  (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  keep_large_buffers_on_heap();
  absl::SetProgramUsageMessage(
      "ringlogd: a ringlog node. Serves EventLog (Append, Replay), Admin and Replication over "
      "gRPC, with the standard health service and server reflection.");
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ ringlogd %v");
  if (absl::Status s = apply_config_and_env(argc, argv); !s.ok()) return fail(s.ToString());
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  // SIGINT and SIGTERM are taken by sigwait below; block them before any
  // thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ringlog::NodeOptions o = options_from_flags();
  const std::string role = absl::GetFlag(FLAGS_role);
  if (role == "primary") {
    o.role = ringlog::Role::kPrimary;
  } else if (role == "replica") {
    o.role = ringlog::Role::kReplica;
    if (o.primary.empty()) return fail("--role=replica needs --primary=HOST:PORT");
  } else {
    return fail(absl::StrFormat("--role must be primary or replica, not \"%s\"", role));
  }
  if (absl::Status s = ringlog::parse_fsync_policy(absl::GetFlag(FLAGS_fsync), &o.pipeline.fsync,
                                                   &o.pipeline.fsync_interval);
      !s.ok()) {
    return fail(std::string(s.message()));
  }
  if (o.max_request_bytes < ringlog::kMaxRecordSize || o.max_request_bytes > o.pipeline.ring_bytes / 2) {
    return fail(absl::StrFormat(
        "--max_batch_bytes=%d must be between %d (the largest record) and half of --ring_bytes",
        o.max_request_bytes, ringlog::kMaxRecordSize));
  }

  std::string effective;
  for (absl::CommandLineFlag* f : own_flags()) {
    absl::StrAppend(&effective, effective.empty() ? "" : " ", f->Name(), "=", f->CurrentValue());
  }
  spdlog::info("starting with {}", effective);

  ringlog::RecoveryReport report;
  absl::StatusOr<std::unique_ptr<ringlog::Node>> node = ringlog::Node::Open(o, &report);
  if (!node.ok()) return fail(absl::StrFormat("cannot open %s: %s", o.data_dir, node.status().ToString()));
  spdlog::info("log recovered: {} segments, {} events, {} bytes; node_id={} epoch={}",
               report.segments, report.events, report.bytes, (*node)->node_id(),
               (*node)->epoch());
  if (!report.problem.empty()) spdlog::warn("recovery: {}", report.problem);
  if (report.cleared_bytes != 0) {
    spdlog::warn("recovery: cleared {} bytes after the end of the log", report.cleared_bytes);
  }
  for (const std::string& q : report.quarantined) spdlog::warn("recovery: moved aside {}", q);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ringlog::EventLogService event_log((*node).get());
  ringlog::AdminService admin((*node).get());
  ringlog::ReplicationService replication((*node).get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.max_request_bytes + (64 << 10)));
  builder.SetMaxSendMessageSize(64 << 20);
  // Several batches in flight per stream before HTTP/2 flow control waits.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
  builder.RegisterService(&event_log);
  builder.RegisterService(&admin);
  builder.RegisterService(&replication);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) return fail("cannot listen on " + o.listen);
  std::string advertise = absl::GetFlag(FLAGS_advertise);
  if (advertise.empty()) {
    advertise = absl::StrCat(o.listen.substr(0, o.listen.rfind(':')), ":", port);
  }
  (*node)->set_advertise(advertise);
  spdlog::info("serving on port {} ({}), advertised as {}", port, o.listen, advertise);
  std::unique_ptr<ringlog::MetricsServer> metrics;
  if (const std::string ml = absl::GetFlag(FLAGS_metrics_listen); !ml.empty()) {
    absl::StatusOr<std::unique_ptr<ringlog::MetricsServer>> m =
        ringlog::MetricsServer::Start(node->get(), ml);
    if (!m.ok()) return fail(m.status().ToString());
    metrics = std::move(*m);
    spdlog::info("metrics on http://{}/metrics (port {})", ml, metrics->port());
  }
  if (const std::string pf = absl::GetFlag(FLAGS_port_file); !pf.empty()) {
    // Written whole under a temporary name, so a reader never sees half of it.
    std::ofstream(pf + ".tmp") << port << "\n";
    std::rename((pf + ".tmp").c_str(), pf.c_str());
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("{} received: stopping intake, draining and syncing", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server->GetHealthCheckService()->SetServingStatus(false);
  (*node)->stop_intake();
  // Drain and sync first, so that appends already taken are acknowledged to
  // clients still connected; then end the calls.
  const absl::Status closed = (*node)->close();
  // Every append taken is acknowledged by now; calls still open (idle
  // streams, followers) get a moment to end, then are cancelled.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  server.reset();
  metrics.reset();
  node->reset();
  if (!closed.ok()) return fail("shutdown: " + closed.ToString());
  spdlog::info("stopped cleanly");
  return 0;
}
