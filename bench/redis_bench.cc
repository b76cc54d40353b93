// Redis 7 Streams with one replica on loopback, measured with the definitions
// of replication_bench, through hiredis (a C client), for a side-by-side
// comparison with ringlog.
//
// Each run gets a fresh primary and replica: redis-server processes started
// here on loopback ports picked at run time, in a temporary directory that is
// removed at the end; they are killed when this program ends, by error or
// signal too. Persistence is the nearest to ringlogd's default (--fsync=none:
// written to the page cache, so it survives a process crash, flushed by the
// kernel): --appendonly yes --appendfsync no, and no RDB snapshots (--save '').
// Each entry is XADD s * p <payload> (one field holding the payload).
//
//  1. catchup: the primary holds N entries (pipelined XADDs); an empty server
//     is then told REPLICAOF it, and the time until it has the whole stream
//     (link up and its replication offset at the primary's) gives the rate it
//     copies at. For Redis that is a full sync: the primary forks and streams
//     a snapshot, which the replica loads. mb_per_sec counts ringlog's record
//     size (16-byte header plus payload, 8-byte aligned), as replication_bench
//     does.
//  2. lag: XADDs paced at --rate per second as replication_bench paces its
//     appends: every 1 ms the entries due by then, one XADD each, sent in one
//     pipelined write. A thread of this process follows the stream on the
//     replica with XREAD BLOCK 0 and, for each entry, records now minus the
//     time the writer took just before sending it (replication_bench's lag:
//     the writer's timestamp to the event readable on the replica). A second
//     line records, for the same entries, now minus the time the writer had
//     the XADD's reply (the primary's ack to readable on the replica); an
//     entry read before its ack reached the writer counts as 0 and in
//     "before_ack". Both clocks are this process's steady clock.
//  3. commit: XADD followed by WAIT 1 0 (the replica has acknowledged the
//     entry: Redis's nearest to ringlogd --min_replica_acks=1), sent together,
//     one at a time, timed from the send to WAIT's reply, after warm-up rounds.
//
// Prints one JSON line per figure, in replication_bench's format, latencies in
// microseconds.
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "common/latency_histogram.h"
#include "common/process.h"

ABSL_FLAG(std::string, redis_server, "redis-server", "redis-server binary");
ABSL_FLAG(uint64_t, catchup_events, 1'000'000, "entries the replica copies in the catch-up run");
ABSL_FLAG(uint32_t, payload, 64, "payload bytes (at least 20)");
ABSL_FLAG(uint64_t, rate, 100'000, "entries per second in the lag run");
ABSL_FLAG(double, lag_seconds, 5, "length of the lag run");
ABSL_FLAG(uint64_t, commits, 5000, "XADD + WAIT rounds timed in the commit-latency run");
ABSL_FLAG(uint64_t, commit_warmup, 100, "rounds before the timed ones in the commit-latency run");
ABSL_FLAG(std::vector<std::string>, runs, std::vector<std::string>({"catchup", "lag", "commit"}),
          "which runs: catchup, lag, commit (comma-separated)");

namespace {

using ringlog::tools::LatencyHistogram;
using Clock = std::chrono::steady_clock;

// The servers started and the temporary directory, for the cleanup on any
// exit: normal, die(), or SIGINT/SIGTERM (handled by a thread in sigwait).
std::mutex g_mu;
std::vector<pid_t> g_children;
std::string g_dir;
std::atomic<bool> g_stopping{false};  // a signal came: the servers go away now

void cleanup() {
  std::lock_guard<std::mutex> l(g_mu);
  for (pid_t p : g_children) {
    kill(p, SIGKILL);
    waitpid(p, nullptr, 0);
  }
  g_children.clear();
  if (!g_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(g_dir, ec);
    g_dir.clear();
  }
}

[[noreturn]] void die(const std::string& what) {
  // After a signal, a failure is the servers being killed: the signal's exit follows.
  while (g_stopping) std::this_thread::sleep_for(std::chrono::seconds(1));
  std::fprintf(stderr, "redis_bench: %s\n", what.c_str());
  cleanup();
  std::_Exit(1);
}

bool run(const char* name) {
  const std::vector<std::string> runs = absl::GetFlag(FLAGS_runs);
  return std::find(runs.begin(), runs.end(), name) != runs.end();
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// A loopback port that was free a moment ago.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    die(std::string("free port: ") + std::strerror(errno));
  }
  close(fd);
  return ntohs(a.sin_port);
}

struct Reply {
  redisReply* r = nullptr;
  ~Reply() {
    if (r != nullptr) freeReplyObject(r);
  }
};

using Conn = std::unique_ptr<redisContext, decltype(&redisFree)>;

Conn connect_to(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    return Conn(nullptr, &redisFree);
  }
  return Conn(c, &redisFree);
}

// Runs a command; dies on a connection or server error.
void command(redisContext* c, Reply& out, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  void* r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (r == nullptr) die(std::string("redis: ") + c->errstr);
  out.r = static_cast<redisReply*>(r);
  if (out.r->type == REDIS_REPLY_ERROR) die(std::string("redis: ") + out.r->str);
}

void get_reply(redisContext* c, Reply& out) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) die(std::string("redis: ") + c->errstr);
  out.r = static_cast<redisReply*>(r);
  if (out.r->type == REDIS_REPLY_ERROR) die(std::string("redis: ") + out.r->str);
}

// A field of INFO replication, e.g. "master_repl_offset"; "" if absent.
std::string info_field(redisContext* c, const std::string& name) {
  Reply r;
  command(c, r, "INFO replication");
  const std::string text(r.r->str, r.r->len);
  const std::string key = name + ":";
  size_t at = text.find("\n" + key);
  if (at == std::string::npos) {
    if (text.compare(0, key.size(), key) != 0) return "";
    at = 0;
  } else {
    at += 1;
  }
  at += key.size();
  return text.substr(at, text.find_first_of("\r\n", at) - at);
}

uint64_t repl_offset(redisContext* c) {
  return std::strtoull(info_field(c, "master_repl_offset").c_str(), nullptr, 10);
}

class RedisServer {
 public:
  // Starts redis-server in `dir` (made here) and waits until it answers.
  RedisServer(const std::string& dir, const std::vector<std::string>& extra) {
    std::filesystem::create_directories(dir);
    // The port was free a moment ago; if another process took it since, the
    // server exits at once and the next attempt picks another.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      std::vector<std::string> args = {absl::GetFlag(FLAGS_redis_server),
                                       "--port", std::to_string(port_),
                                       "--bind", "127.0.0.1",
                                       "--dir", dir,
                                       "--logfile", dir + "/redis.log",
                                       "--daemonize", "no",
                                       "--save", "",
                                       "--appendonly", "yes",
                                       "--appendfsync", "no",
                                       // the replica's first sync starts at once
                                       "--repl-diskless-sync-delay", "0"};
      for (const std::string& e : extra) args.push_back(e);
      {
        std::lock_guard<std::mutex> l(g_mu);
        pid_ = fork();
        if (pid_ < 0) die(std::string("fork: ") + std::strerror(errno));
        if (pid_ == 0) {
          prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with this program, however it ends
          const int fd = open("/dev/null", O_WRONLY);
          if (fd >= 0) dup2(fd, STDOUT_FILENO);
          std::vector<char*> argv;
          for (std::string& a : args) argv.push_back(a.data());
          argv.push_back(nullptr);
          execvp(argv[0], argv.data());
          _exit(127);
        }
        g_children.push_back(pid_);
      }
      if (wait_serving()) return;
      forget_child();
    }
    // The directory goes at exit: show the end of the server's log.
    std::string log;
    if (std::FILE* f = std::fopen((dir + "/redis.log").c_str(), "r")) {
      char buf[4096];
      std::fseek(f, -static_cast<long>(sizeof buf - 1), SEEK_END);
      log.assign(buf, std::fread(buf, 1, sizeof buf - 1, f));
      std::fclose(f);
    }
    die(absl::GetFlag(FLAGS_redis_server) + " did not start" +
        (log.empty() ? "" : "; the end of its log:\n" + log));
  }
  ~RedisServer() { forget_child(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  redisContext* admin() const { return conn_.get(); }  // for INFO and the like

 private:
  // Waits until the server answers PING; false if it exited or took too long.
  bool wait_serving() {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        std::lock_guard<std::mutex> l(g_mu);
        g_children.erase(std::remove(g_children.begin(), g_children.end(), pid_),
                         g_children.end());
        pid_ = -1;
        return false;
      }
      conn_ = connect_to(port_);
      if (conn_) {
        Reply r;
        r.r = static_cast<redisReply*>(redisCommand(conn_.get(), "PING"));
        if (r.r != nullptr && r.r->type == REDIS_REPLY_STATUS) return true;
        conn_.reset();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  // Kills a server that did not start (if it still runs).
  void forget_child() {
    std::lock_guard<std::mutex> l(g_mu);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      g_children.erase(std::remove(g_children.begin(), g_children.end(), pid_), g_children.end());
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int port_ = 0;
  Conn conn_{nullptr, &redisFree};
};

void wait_link_up(redisContext* replica) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (info_field(replica, "master_link_status") != "up") {
    if (Clock::now() > deadline) die("the replica did not connect to the primary");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// A primary and a replica of it, connected.
struct Pair {
  explicit Pair(const std::string& dir)
      : primary(dir + "/p", {}),
        replica(dir + "/r", {"--replicaof", "127.0.0.1", std::to_string(primary.port())}) {
    wait_link_up(replica.admin());
  }
  RedisServer primary;
  RedisServer replica;
};

void print_latency(const char* name, const LatencyHistogram& h, const std::string& extra) {
  std::printf(
      "{\"bench\":\"%s\",\"samples\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
      "\"max_us\":%.1f%s}\n",
      name, static_cast<unsigned long long>(h.count()), h.quantile(0.5) / 1e3,
      h.quantile(0.99) / 1e3, h.quantile(0.999) / 1e3, h.quantile(1.0) / 1e3, extra.c_str());
  std::fflush(stdout);
}

// The payload of entry `seq`: its number in decimal, padded to `len` bytes.
void fill_payload(std::string& p, uint64_t seq) {
  std::fill(p.begin(), p.end(), ' ');
  const std::string s = std::to_string(seq);
  std::memcpy(p.data(), s.data(), std::min(s.size(), p.size()));
}

void catchup(const std::string& dir, uint32_t payload_len) {
  RedisServer primary(dir + "/p1", {});
  RedisServer replica(dir + "/r1", {});
  Conn w = connect_to(primary.port());
  if (!w) die("connect to the primary");
  const uint64_t n = absl::GetFlag(FLAGS_catchup_events);
  std::string payload(payload_len, 'x');
  constexpr uint64_t kPipeline = 1000;
  for (uint64_t i = 0; i < n;) {
    const uint64_t end = std::min(n, i + kPipeline);
    for (uint64_t j = i; j < end; ++j) {
      redisAppendCommand(w.get(), "XADD s * p %b", payload.data(), payload.size());
    }
    for (; i < end; ++i) {
      Reply r;
      get_reply(w.get(), r);
    }
  }
  const uint64_t target = repl_offset(primary.admin());
  const auto t0 = Clock::now();
  Reply r;
  command(replica.admin(), r, "REPLICAOF 127.0.0.1 %d", primary.port());
  const auto deadline = t0 + std::chrono::seconds(600);
  for (;;) {
    if (info_field(replica.admin(), "master_link_status") == "up" &&
        repl_offset(replica.admin()) >= target) {
      break;
    }
    if (Clock::now() > deadline) die("the replica did not catch up");
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  Reply len;
  command(replica.admin(), len, "XLEN s");
  if (len.r->type != REDIS_REPLY_INTEGER || static_cast<uint64_t>(len.r->integer) != n) {
    die("the replica does not hold every entry");
  }
  const uint64_t bytes = n * ((16 + payload_len + 7) & ~uint64_t{7});
  std::printf(
      "{\"bench\":\"redis_replica_catchup\",\"events\":%llu,\"bytes\":%llu,\"seconds\":%.3f,"
      "\"events_per_sec\":%.0f,\"mb_per_sec\":%.1f}\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(bytes), secs, n / secs,
      bytes / secs / 1e6);
  std::fflush(stdout);
}

void lag(const std::string& dir, uint32_t payload_len) {
  Pair pair(dir + "/2");
  const uint64_t rate = absl::GetFlag(FLAGS_rate);
  const double secs = absl::GetFlag(FLAGS_lag_seconds);
  const uint64_t total = static_cast<uint64_t>(rate * secs);
  // Per entry: the writer's time before sending it, and when it had the ack.
  std::unique_ptr<std::atomic<int64_t>[]> sent_at(new std::atomic<int64_t>[total]);
  std::unique_ptr<std::atomic<int64_t>[]> acked_at(new std::atomic<int64_t>[total]);
  for (uint64_t i = 0; i < total; ++i) {
    sent_at[i].store(0, std::memory_order_relaxed);
    acked_at[i].store(0, std::memory_order_relaxed);
  }
  Conn rc = connect_to(pair.replica.port());
  Conn wc = connect_to(pair.primary.port());
  if (!rc || !wc) die("connect");
  LatencyHistogram from_send, from_ack;
  uint64_t before_ack = 0;
  std::atomic<bool> ready{false};
  std::atomic<bool> failed{false};
  std::string reader_error;
  std::thread reader([&] {
    std::string last = "0-0";
    uint64_t seen = 0;
    ready = true;
    while (seen < total) {
      void* p = redisCommand(rc.get(), "XREAD BLOCK 0 STREAMS s %s", last.c_str());
      if (p == nullptr) {
        reader_error = rc->errstr;
        failed = true;
        return;
      }
      Reply r;
      r.r = static_cast<redisReply*>(p);
      // [[ "s", [[id, ["p", payload]], ...] ]]
      if (r.r->type != REDIS_REPLY_ARRAY || r.r->elements != 1 ||
          r.r->element[0]->elements != 2) {
        reader_error = "unexpected XREAD reply";
        failed = true;
        return;
      }
      const redisReply* entries = r.r->element[0]->element[1];
      for (size_t i = 0; i < entries->elements; ++i) {
        const redisReply* e = entries->element[i];
        const uint64_t seq = std::strtoull(e->element[1]->element[1]->str, nullptr, 10);
        const int64_t now = now_ns();
        if (seq < total) {
          const int64_t s = sent_at[seq].load(std::memory_order_acquire);
          const int64_t a = acked_at[seq].load(std::memory_order_acquire);
          from_send.record(static_cast<uint64_t>(std::max<int64_t>(0, now - s)));
          if (a == 0 || a > now) ++before_ack;
          from_ack.record(a == 0 ? 0 : static_cast<uint64_t>(std::max<int64_t>(0, now - a)));
        }
        ++seen;
        if (i + 1 == entries->elements) last.assign(e->element[0]->str, e->element[0]->len);
      }
    }
  });
  while (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the reader is in XREAD
  std::string payload(payload_len, ' ');
  // Send a batch every 1 ms with the entries due by then, as replication_bench does.
  const auto t0 = Clock::now();
  uint64_t sent = 0;
  while (sent < total && !failed) {
    const double el = std::chrono::duration<double>(Clock::now() - t0).count();
    const auto due = std::min<uint64_t>(total, static_cast<uint64_t>(el * rate) + 1);
    const uint64_t first = sent;
    for (; sent < due; ++sent) {
      fill_payload(payload, sent);
      sent_at[sent].store(now_ns(), std::memory_order_release);
      redisAppendCommand(wc.get(), "XADD s * p %b", payload.data(), payload.size());
    }
    for (uint64_t i = first; i < sent; ++i) {
      Reply r;
      get_reply(wc.get(), r);
      acked_at[i].store(now_ns(), std::memory_order_release);
    }
    std::this_thread::sleep_until(t0 + std::chrono::microseconds(
                                           static_cast<int64_t>((el + 0.001) * 1e6)));
  }
  reader.join();
  if (failed) die("replica reader: " + reader_error);
  char extra[160];
  std::snprintf(extra, sizeof extra, ",\"rate\":%llu,\"seconds\":%.1f,\"read_from\":\"replica\"",
                static_cast<unsigned long long>(rate), secs);
  print_latency("redis_replication_lag", from_send, extra);
  char extra2[200];
  std::snprintf(extra2, sizeof extra2, "%s,\"before_ack\":%llu", extra,
                static_cast<unsigned long long>(before_ack));
  print_latency("redis_replication_lag_from_ack", from_ack, extra2);
}

void commit(const std::string& dir, uint32_t payload_len) {
  Pair pair(dir + "/3");
  Conn c = connect_to(pair.primary.port());
  if (!c) die("connect");
  std::string payload(payload_len, 'c');
  LatencyHistogram h;
  const uint64_t n = absl::GetFlag(FLAGS_commits);
  const uint64_t warmup = absl::GetFlag(FLAGS_commit_warmup);
  for (uint64_t i = 0; i < n + warmup; ++i) {
    const auto t0 = Clock::now();
    redisAppendCommand(c.get(), "XADD s * p %b", payload.data(), payload.size());
    redisAppendCommand(c.get(), "WAIT 1 0");
    Reply add, wait;
    get_reply(c.get(), add);
    get_reply(c.get(), wait);
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
    if (wait.r->type != REDIS_REPLY_INTEGER || wait.r->integer < 1) {
      die("WAIT 1 0 returned without the replica's ack");
    }
    if (i >= warmup) h.record(static_cast<uint64_t>(ns));
  }
  print_latency("redis_commit_latency_1_ack", h, "");
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const uint32_t payload_len = absl::GetFlag(FLAGS_payload);
  if (payload_len < 20) die("--payload must be at least 20 (entries carry their number)");

  // SIGINT and SIGTERM end the program through cleanup(), from a thread of
  // its own; the servers also die with this process (PR_SET_PDEATHSIG).
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::thread([sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    g_stopping = true;
    cleanup();
    std::_Exit(128 + sig);
  }).detach();

  absl::StatusOr<std::string> tmp = ringlog::tools::make_temp_dir("ringlog-redis-");
  if (!tmp.ok()) die(std::string(tmp.status().message()));
  {
    std::lock_guard<std::mutex> l(g_mu);
    g_dir = *tmp;
  }
  if (run("catchup")) catchup(*tmp, payload_len);
  if (run("lag")) lag(*tmp, payload_len);
  if (run("commit")) commit(*tmp, payload_len);
  cleanup();
  return 0;
}
