// ringlogd: a ringlog node (primary or replica).
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "config.h"
#include "flags.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "metrics.h"
#include "node.h"
#include "ringlog/version.h"
#include "security.h"
#include "services.h"
#include "spdlog/spdlog.h"

namespace {

// Exit codes: 0 stopped cleanly, 1 failed (the data directory, the port, a
// stop that did not close cleanly), 2 bad usage (a flag, the config file or
// the environment).
constexpr int kFailed = 1;
constexpr int kBadUsage = 2;

int fail(const std::string& msg, int code = kFailed) {
  spdlog::critical("{}", msg);
  return code;
}

constexpr char kUsage[] =
    "ringlogd: a ringlog node. Serves EventLog (Append, Replay), Admin and Replication over "
    "gRPC, with the standard health service and server reflection.\n\n"
    "Usage: ringlogd [--flag=value ...]\n"
    "Settings come from --config=FILE (\"name = value\" lines), then RINGLOG_<NAME> in the "
    "environment, then the command line (--name=value or --name value; --flagfile=FILE).";

void print_flag(const absl::CommandLineFlag& f) {
  const std::string def = f.DefaultValue();
  std::printf("  --%s  (default: %s)\n      %s\n", std::string(f.Name()).c_str(),
              def.empty() ? "\"\"" : def.c_str(), f.Help().c_str());
}

// --help: ringlogd's own flags; --helpfull: also those of the libraries it
// links (Abseil's --flagfile, ...).
void print_help(bool full) {
  std::printf("%s\n\nFlags:\n", kUsage);
  for (const absl::CommandLineFlag* f : ringlog::own_flags()) print_flag(*f);
  if (full) {
    std::printf("\nFlags of the libraries:\n");
    std::vector<const absl::CommandLineFlag*> others;
    const std::vector<absl::CommandLineFlag*> own = ringlog::own_flags();
    for (const auto& [name, flag] : absl::GetAllFlags()) {
      if (std::find(own.begin(), own.end(), flag) == own.end() && !flag->IsRetired()) {
        others.push_back(flag);
      }
    }
    std::sort(others.begin(), others.end(), [](const auto* a, const auto* b) {
      return a->Name() < b->Name();
    });
    for (const absl::CommandLineFlag* f : others) print_flag(*f);
  }
  std::printf(
      "\n  -h, --help  this help (--helpfull: the libraries' flags too)\n"
      "  --version   the version and git revision\n\n"
      "Exit codes: 0 stopped cleanly (SIGTERM or SIGINT), 1 failed (the data directory, the "
      "port, a stop that did not close cleanly), 2 bad usage (a flag, the config file or the "
      "environment).\n");
}

enum class UsageRequest { kNone, kHelp, kHelpFull, kVersion };

// --help, -h, --helpfull or --version anywhere before a "--". They are
// answered before anything else is read, so that they work whatever else the
// command line, the config file or the environment holds.
UsageRequest usage_request(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (a == "--") break;
    if (a == "-h" || a == "--help" || a == "-help" || a == "--helpshort" || a == "-helpshort") {
      return UsageRequest::kHelp;
    }
    if (a == "--helpfull" || a == "-helpfull") return UsageRequest::kHelpFull;
    if (a == "--version" || a == "-version") return UsageRequest::kVersion;
  }
  return UsageRequest::kNone;
}

// Abseil's flag help (--helpon, --helpmatch) lists the flags of the files
// this says; it matched none by default, since ringlogd's flags are not
// defined in main.cc.
void configure_abseil_usage() {
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "server/flags.cc");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.version_string = [] { return "ringlogd " + ringlog::version_string() + "\n"; };
  absl::SetFlagsUsageConfig(config);
}

}  // namespace

// Abseil's parser calls this for each mistake on the command line (an
// unknown flag, a value a flag refuses, a flag without its value) after
// printing it, and ends the process with exit(1) once it has read the whole
// command line. Those are bad usage: the exit status becomes 2.
extern "C" void ABSL_INTERNAL_C_SYMBOL(AbslInternalReportFatalUsageError)(absl::string_view) {
  static std::once_flag once;
  std::call_once(once, [] {
    std::atexit([] {
      std::fflush(nullptr);
      std::_Exit(kBadUsage);
    });
  });
}

namespace {

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

// SIGINT and SIGTERM (stop) and SIGHUP (reload the credentials) are taken
// by sigwait in main; block them before any thread starts so that every
// thread inherits the mask.
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

absl::StatusOr<std::unique_ptr<ringlog::Node>> open_node(const ringlog::NodeOptions& o) {
  ringlog::RecoveryReport report;
  absl::StatusOr<std::unique_ptr<ringlog::Node>> node = ringlog::Node::Open(o, &report);
  if (!node.ok()) {
    return absl::Status(node.status().code(),
                        absl::StrFormat("cannot open %s: %s", o.data_dir, node.status().ToString()));
  }
  spdlog::info("log recovered: {} segments, {} events, {} bytes; node_id={} epoch={}",
               report.segments, report.events, report.bytes, (*node)->node_id(),
               (*node)->epoch());
  if (!report.problem.empty()) spdlog::warn("recovery: {}", report.problem);
  if (report.cleared_bytes != 0) {
    spdlog::warn("recovery: cleared {} bytes after the end of the log", report.cleared_bytes);
  }
  for (const std::string& q : report.quarantined) spdlog::warn("recovery: moved aside {}", q);
  return node;
}

// The gRPC server with the services it serves, which must outlive it.
struct GrpcServing {
  GrpcServing(ringlog::Node* node, const ringlog::Security* security)
      : event_log(node, security), admin(node, security), replication(node, security) {}
  ringlog::EventLogService event_log;
  ringlog::AdminService admin;
  ringlog::ReplicationService replication;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

absl::StatusOr<std::unique_ptr<GrpcServing>> serve_grpc(ringlog::Node* node,
                                                        const ringlog::NodeOptions& o,
                                                        const ringlog::Security* security,
                                                        const ringlog::TransportLimits& limits) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  auto s = std::make_unique<GrpcServing>(node, security);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen, security->server_credentials(), &s->port);
  // gRPC binds with SO_REUSEPORT by default: a second node started on the
  // same port would start too, and calls would split between the two.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Streams per connection, idle and old connections, the handshake's
  // deadline, and the largest message received: --max_batch_bytes + 64 MiB,
  // so that an oversized Append gets the reactor's INVALID_ARGUMENT naming
  // the flag, while no client can make the node buffer a message of GiBs.
  ringlog::apply_transport_limits(builder, limits, o.max_request_bytes);
  builder.SetMaxSendMessageSize(64 << 20);
  // Several batches in flight per stream before HTTP/2 flow control waits.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
  // Clients and replicas ping every second to find a frozen peer (see the
  // client's channel); take those pings, even between calls, instead of
  // answering them with GOAWAY "too many pings".
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // The node pings its clients too, so that the calls of one that vanished
  // end (and release what they hold) within seconds.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder.RegisterService(&s->event_log);
  builder.RegisterService(&s->admin);
  builder.RegisterService(&s->replication);
  s->server = builder.BuildAndStart();
  if (!s->server || s->port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", o.listen,
        ": the port is in use (another ringlogd?) or the address is not this host's"));
  }
  return s;
}

// What a client must show, said once at start; a node anyone may call says
// so as a warning.
void log_security(const ringlog::Security& security, const std::string& listen) {
  if (security.enforcing() && !security.tls()) {
    spdlog::warn("security: {}; tokens travel in the clear: anyone on the path can read and "
                 "replay them (see --tls_cert)", security.describe());
    return;
  }
  if (security.enforcing()) {
    spdlog::info("security: {}", security.describe());
    return;
  }
  spdlog::warn("security: {}; unauthenticated: anyone who reaches {} may append, replay, "
               "promote and follow (see --auth_tokens, --tls_client_ca)",
               security.describe(), listen);
}

// Written whole under a temporary name, so a reader never sees half of it.
void write_port_file(const std::string& path, int port) {
  std::ofstream(path + ".tmp") << port << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

// The last resort of a stop: ends the process if it is still running
// `limit` after the signal, whatever it waits for. The steps of a stop each
// have a bound of their own (see stop_serving()), so this fires only when
// one of them broke its promise; it says which, and exits 0 only when the
// node had closed cleanly (the log synced, every append taken acknowledged
// or failed). Process exit releases the data directory's lock.
class ShutdownWatchdog {
 public:
  explicit ShutdownWatchdog(std::chrono::milliseconds limit)
      : thread_([this, limit] {
          std::unique_lock l(mu_);
          if (cv_.wait_for(l, limit, [&] { return done_; })) return;
          spdlog::error("shutdown: still {} {} ms after the signal; exiting now{}", step_,
                        limit.count(),
                        exit_code_ == 0 ? " (the node had closed: the log is synced)" : "");
          spdlog::default_logger()->flush();
          std::_Exit(exit_code_);
        }) {}
  ~ShutdownWatchdog() {
    {
      std::lock_guard l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // What the stop waits for now ("draining the node", ...), for the message.
  void step(const char* what) {
    std::lock_guard l(mu_);
    step_ = what;
  }
  // The node closed with `s`: the exit status from now on.
  void node_closed(const absl::Status& s) {
    std::lock_guard l(mu_);
    exit_code_ = s.ok() ? 0 : 1;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  const char* step_ = "stopping";
  int exit_code_ = 1;  // until the node closed cleanly
  std::thread thread_;  // last: starts once the rest is ready
};

// How long calls still open after the drain may take to end by themselves
// (acks on their way out, replays finishing a response) before they are
// cancelled, and when the watchdog gives up on the whole stop. A call with a
// write in flight to a peer that reads nothing (frozen) ends only when gRPC
// closes that connection: the ping sent with the shutdown's GOAWAY goes
// unanswered for GRPC_ARG_KEEPALIVE_TIMEOUT_MS (5 s), so a stop takes up to
// about 5.5 s then.
constexpr std::chrono::milliseconds kCallGrace{500};
constexpr std::chrono::milliseconds kStopLimit{8000};

// Stops serving after SIGINT or SIGTERM: the node refuses new appends and
// drains and syncs what it took (each append acknowledged or failed), then
// calls still open get kCallGrace and are cancelled. Every reactor finishes
// once the node closed or its call was cancelled, so Shutdown() returns.
absl::Status stop_serving(int sig, ringlog::Node* node, grpc::Server* server,
                          ShutdownWatchdog* watchdog) {
  spdlog::info("{} received: stopping intake, draining and syncing",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  server->GetHealthCheckService()->SetServingStatus(false);
  node->stop_intake();
  // Drain and sync first, so that appends already taken are acknowledged to
  // clients still connected; then end the calls.
  watchdog->step("draining and syncing the node");
  const absl::Status closed = node->close();
  watchdog->node_closed(closed);
  watchdog->step("waiting for gRPC calls to end");
  const auto t0 = std::chrono::steady_clock::now();
  server->Shutdown(std::chrono::system_clock::now() + kCallGrace);
  spdlog::info("gRPC calls ended {} ms after the drain",
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0).count());
  return closed;
}

}  // namespace

int main(int argc, char** argv) {
  keep_large_buffers_on_heap();
  absl::SetProgramUsageMessage(kUsage);
  configure_abseil_usage();
  switch (usage_request(argc, argv)) {
    case UsageRequest::kHelp:
      print_help(false);
      return 0;
    case UsageRequest::kHelpFull:
      print_help(true);
      return 0;
    case UsageRequest::kVersion:
      std::printf("ringlogd %s\n", ringlog::version_string().c_str());
      return 0;
    case UsageRequest::kNone:
      break;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ ringlogd %v");
  if (absl::Status s = ringlog::parse_flags(argc, argv, ringlog::own_flags()); !s.ok()) {
    return fail(s.ToString(), kBadUsage);
  }
  absl::StatusOr<ringlog::DaemonOptions> o = ringlog::daemon_options_from_flags();
  if (!o.ok()) return fail(std::string(o.status().message()), kBadUsage);
  spdlog::set_level(spdlog::level::from_str(o->log_level));
  const sigset_t signals = block_signals();
  spdlog::info("ringlogd {} starting with {}", ringlog::version_string(),
               ringlog::describe_own_flags());

  // Before the node, whose follower calls the primary with these credentials.
  absl::StatusOr<std::unique_ptr<ringlog::Security>> security =
      ringlog::Security::Open(o->security);
  if (!security.ok()) return fail(std::string(security.status().message()), kBadUsage);
  // The metrics' files are read before the log is opened: a bad one is bad usage.
  std::unique_ptr<ringlog::MetricsServer> metrics;
  if (!o->metrics.listen.empty()) {
    absl::StatusOr<std::unique_ptr<ringlog::MetricsServer>> m =
        ringlog::MetricsServer::Create(o->metrics);
    if (!m.ok()) {
      return fail(std::string(m.status().message()),
                  absl::IsInvalidArgument(m.status()) ? kBadUsage : kFailed);
    }
    metrics = std::move(*m);
  }
  absl::StatusOr<std::unique_ptr<ringlog::Node>> node = open_node(o->node);
  if (!node.ok()) return fail(std::string(node.status().message()));
  // After the node, which holds the data directory's lock: TLS stages its
  // files there.
  if (absl::Status s = (*security)->start_tls(); !s.ok()) return fail(s.ToString());
  ringlog::raise_open_files_limit();
  absl::StatusOr<std::unique_ptr<GrpcServing>> serving =
      serve_grpc(node->get(), o->node, security->get(), o->transport);
  if (!serving.ok()) return fail(std::string(serving.status().message()));
  const std::string& listen = o->node.listen;
  const std::string advertise = !o->advertise.empty()
      ? o->advertise
      : absl::StrCat(listen.substr(0, listen.rfind(':')), ":", (*serving)->port);
  (*node)->set_advertise(advertise);
  spdlog::info("serving on port {} ({}), advertised as {}", (*serving)->port, listen, advertise);
  log_security(**security, absl::StrCat(listen.substr(0, listen.rfind(':')), ":",
                                        (*serving)->port));
  if (metrics != nullptr) {
    if (absl::Status s = metrics->Start(node->get()); !s.ok()) return fail(s.ToString());
    spdlog::info("metrics on {} (port {})", metrics->url(), metrics->port());
  }
  // The health service: "" says the process serves until it stops; the
  // others follow the node's role and state (services.h).
  grpc::HealthCheckServiceInterface* health = (*serving)->server->GetHealthCheckService();
  (*node)->set_health_listener([health](const ringlog::NodeHealth& h) {
    health->SetServingStatus(ringlog::kReplayHealthService, h.replay);
    health->SetServingStatus(ringlog::kAppendHealthService, h.append);
    health->SetServingStatus(ringlog::kReplicationHealthService, h.replication);
  });
  if (!o->port_file.empty()) write_port_file(o->port_file, (*serving)->port);

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    if (absl::Status s = (*security)->reload(); s.ok()) {
      spdlog::info("SIGHUP: credentials reloaded: {}", (*security)->describe());
    } else {
      spdlog::error("SIGHUP: credentials not reloaded, the node keeps what it had: {}",
                    s.ToString());
    }
    if (metrics) {
      if (absl::Status s = metrics->reload(); s.ok()) {
        spdlog::info("SIGHUP: metrics credentials reloaded");
      } else {
        spdlog::error("SIGHUP: metrics credentials not reloaded, kept: {}", s.ToString());
      }
    }
  }
  ShutdownWatchdog watchdog(kStopLimit);
  const absl::Status closed = stop_serving(sig, node->get(), (*serving)->server.get(), &watchdog);
  watchdog.step("stopping the metrics server");
  metrics.reset();
  watchdog.step("closing the log");
  node->reset();  // releases the data directory
  // The server stays allocated: every call has ended, and destroying the
  // last gRPC object tears gRPC's library down, which can wait seconds for
  // its executor's poller (seen: 10 s). The process is about to exit.
  (void)serving->release();
  if (!closed.ok()) return fail("shutdown: " + closed.ToString());
  spdlog::info("stopped cleanly");
  return 0;
}
