#!/usr/bin/python3
# Redis 7 Streams with one replica on loopback, measured the way
# replication_bench measures ringlog, for a side-by-side comparison.
#
# Each figure gets a fresh primary and replica (redis-server processes this
# script starts on free loopback ports, each in its own temporary directory)
# with persistence equivalent to ringlog's defaults: appendonly yes,
# appendfsync no (the kernel decides when to flush) and no RDB snapshots.
#
#  1. redis_replica_catchup: the rate at which a connected, idle replica keeps
#     up with a pipelined writer. Redis replicates by streaming commands, so
#     there is no separate "copy an existing log" catch-up (a fresh replica
#     does a full RDB sync instead). redis-benchmark, one connection,
#     pipelines of 1000, XADDs N entries with one field `p` holding the
#     payload to one stream; timed from the first XADD until the replica's
#     replication offset reaches the primary's after the last one.
#     mb_per_sec counts ringlog's record size for the payload (16-byte header
#     plus payload, 8-byte aligned: 80 bytes for 64); repl_bytes and
#     repl_mb_per_sec count the replication stream itself.
#  2. redis_replication_lag: XADDs paced at --rate per second, a batch every
#     1 ms, each entry carrying its wall-clock send time in ns; a second
#     process follows the stream on the replica with XREAD BLOCK 0 and
#     records now minus that time for every entry: p50/p99/p99.9/max.
#  3. redis_commit_latency_1_ack: one XADD pipelined with WAIT 1 0 (the
#     replica has acknowledged it, Redis's nearest to min_replica_acks=1),
#     timed end to end, after 100 warm-up rounds: p50/p99/p99.9/max.
#
# The clients of 2 and 3 speak RESP over a plain socket: a Python client
# library's per-entry cost would otherwise be what is measured.
# Prints one JSON line per figure.
import argparse
import collections
import contextlib
import json
import multiprocessing
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:
    import redis
except ImportError:
    redis = None

LOOPBACK = "127.0.0.1"
STREAM = b"s"
FIELD = b"p"
PIPELINE = 1000
WARMUP = 100
STARTUP_TIMEOUT_S = 10
CATCHUP_TIMEOUT_S = 300

Pair = collections.namedtuple("Pair", "primary_port replica_port primary replica")


def parse_args():
    p = argparse.ArgumentParser(description="Redis Streams replication figures, as JSON lines.")
    p.add_argument("--catchup_events", type=int, default=1_000_000,
                   help="entries XADDed in the catch-up run")
    p.add_argument("--rate", type=int, default=100_000, help="entries per second in the lag run")
    p.add_argument("--lag_seconds", type=float, default=5.0, help="length of the lag run")
    p.add_argument("--commits", type=int, default=5000, help="XADD + WAIT rounds timed")
    p.add_argument("--payload", type=int, default=64, help="payload bytes (at least 20)")
    args = p.parse_args()
    if args.payload < 20:
        p.error("--payload must be at least 20 (the lag run stores a timestamp in it)")
    return args


def check_prerequisites():
    missing = [tool for tool in ("redis-server", "redis-benchmark") if shutil.which(tool) is None]
    if redis is None:
        missing.append("the redis Python module (python3-redis serves the system python3)")
    if missing:
        print("redis_compare: missing " + ", ".join(missing) +
              "; run: apt-get install -y redis-server python3-redis", file=sys.stderr)
        sys.exit(2)


def record_bytes(payload):
    """ringlog's on-log size of a record: 16-byte header plus payload, 8-byte aligned."""
    return (16 + payload + 7) & ~7


def free_ports(n):
    """Loopback ports that were free a moment ago (bound to port 0, released)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((LOOPBACK, 0))
        return [s.getsockname()[1] for s in socks]


def start_server(port, directory, extra_args):
    args = ["redis-server", "--port", str(port), "--bind", LOOPBACK, "--dir", directory,
            "--logfile", directory + "/redis.log", "--appendonly", "yes",
            "--appendfsync", "no", "--save", ""] + extra_args
    return subprocess.Popen(args, cwd=directory, stdout=subprocess.DEVNULL)


def wait_until(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.001)


def responds(client):
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def replica_online(primary):
    return primary.info("replication").get("slave0", {}).get("state") == "online"


@contextlib.contextmanager
def redis_pair():
    """A primary and a replica of it, killed and removed on exit."""
    primary_port, replica_port = free_ports(2)
    dirs, procs = [], []
    try:
        # The replica's initial (empty) sync starts at once instead of after 5 s.
        for port, extra in ((primary_port, ["--repl-diskless-sync-delay", "0"]),
                            (replica_port, ["--replicaof", LOOPBACK, str(primary_port)])):
            dirs.append(tempfile.mkdtemp(prefix="redis-compare-"))
            procs.append(start_server(port, dirs[-1], extra))
        pair = Pair(primary_port, replica_port,
                    redis.Redis(host=LOOPBACK, port=primary_port),
                    redis.Redis(host=LOOPBACK, port=replica_port))
        for client in (pair.primary, pair.replica):
            wait_until(lambda: responds(client), STARTUP_TIMEOUT_S, "redis-server to start")
        wait_until(lambda: replica_online(pair.primary), STARTUP_TIMEOUT_S, "the replica to sync")
        yield pair
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def repl_offset(client):
    return client.info("replication")["master_repl_offset"]


def connect_raw(port):
    sock = socket.create_connection((LOOPBACK, port), timeout=STARTUP_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def command(*args):
    """One command in RESP, the protocol's encoding."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def xadd_command(value):
    return command(b"XADD", STREAM, b"*", FIELD, value)


def receive_lines(sock, lines):
    """Receives replies until they hold `lines` more lines (one request at a time is in flight,
    so nothing after them arrives)."""
    chunks = []
    while lines > 0:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        chunks.append(chunk)
        lines -= chunk.count(b"\n")
    return b"".join(chunks)


def exchange(sock, request, lines):
    """Sends `request` and returns the replies to it, `lines` lines in all.

    An XADD reply is "$<len>\\r\\n<id>\\r\\n": two lines.
    """
    sock.sendall(request)
    return receive_lines(sock, lines)


def xread_after(sock, last_id):
    """XREAD BLOCK 0 on the stream from after `last_id`; returns the entries' ids and values.

    The reply is "*1 *2 $1 s *<k>" (five lines), then per entry
    "*2 $<len> <id> *2 $1 p $<len> <value>" (eight lines, as each entry has one field).
    """
    head = exchange(sock, command(b"XREAD", b"BLOCK", b"0", b"STREAMS", STREAM, last_id), 5)
    k = int(head.split(b"\r\n")[4][1:])
    lines = (head + receive_lines(sock, 5 + 8 * k - head.count(b"\n"))).split(b"\r\n")
    return lines[7::8], lines[12::8]


def latency_fields(samples_ns):
    s = sorted(samples_ns)

    def us(q):
        return round(s[min(len(s) - 1, int(q * len(s)))] / 1e3, 1)

    return {"samples": len(s), "p50_us": us(0.5), "p99_us": us(0.99), "p999_us": us(0.999),
            "max_us": round(s[-1] / 1e3, 1)}


def emit(bench, fields):
    print(json.dumps({"bench": bench, **fields}), flush=True)


def replica_catchup(args):
    n = args.catchup_events
    with redis_pair() as pair:
        start = repl_offset(pair.primary)
        t0 = time.perf_counter()
        subprocess.run(["redis-benchmark", "-h", LOOPBACK, "-p", str(pair.primary_port),
                        "-c", "1", "-P", str(PIPELINE), "-n", str(n), "-q",
                        "XADD", STREAM, "*", FIELD, b"x" * args.payload],
                       check=True, stdout=subprocess.DEVNULL)
        end = repl_offset(pair.primary)
        wait_until(lambda: repl_offset(pair.replica) >= end, CATCHUP_TIMEOUT_S,
                   "the replica to catch up")
        seconds = time.perf_counter() - t0
        if pair.primary.xlen(STREAM) != n:
            raise RuntimeError("redis-benchmark did not add %d entries" % n)
    log_bytes = n * record_bytes(args.payload)
    emit("redis_replica_catchup", {
        "events": n, "bytes": log_bytes, "seconds": round(seconds, 3),
        "events_per_sec": round(n / seconds), "mb_per_sec": round(log_bytes / seconds / 1e6, 1),
        "repl_bytes": end - start, "repl_mb_per_sec": round((end - start) / seconds / 1e6, 1)})


def follow_replica(port, total, ready, results):
    """Reads `total` entries from the replica, sending back now minus each entry's timestamp."""
    last, lags = b"0-0", []
    with connect_raw(port) as sock:
        sock.settimeout(None)  # XREAD BLOCK 0 waits as long as the writer takes
        ready.set()
        while len(lags) < total:
            ids, values = xread_after(sock, last)
            now = time.time_ns()
            lags.extend(now - int(v) for v in values)
            last = ids[-1]
    results.send(lags)


def paced_writes(port, rate, total, payload):
    """XADDs `total` timestamped entries at `rate` per second, a batch every 1 ms."""
    with connect_raw(port) as sock:
        t0 = time.monotonic()
        sent = 0
        while sent < total:
            elapsed = time.monotonic() - t0
            due = min(total, int(elapsed * rate) + 1)
            batch = b"".join(xadd_command(str(time.time_ns()).ljust(payload).encode())
                             for _ in range(due - sent))
            exchange(sock, batch, 2 * (due - sent))
            sent = due
            time.sleep(max(0.0, t0 + elapsed + 0.001 - time.monotonic()))


def replication_lag(args):
    total = int(args.rate * args.lag_seconds)
    with redis_pair() as pair:
        ready = multiprocessing.Event()
        results, child_end = multiprocessing.Pipe(duplex=False)
        reader = multiprocessing.Process(
            target=follow_replica, args=(pair.replica_port, total, ready, child_end))
        reader.start()
        child_end.close()  # so a reader that dies shows up as end of file
        try:
            ready.wait()
            time.sleep(0.2)  # the reader is blocked in XREAD
            paced_writes(pair.primary_port, args.rate, total, args.payload)
            if not results.poll(CATCHUP_TIMEOUT_S):
                raise TimeoutError("the replica reader did not see every entry")
            lags = results.recv()
        finally:
            reader.kill()
            reader.join()
    emit("redis_replication_lag",
         {**latency_fields(lags), "rate": args.rate, "seconds": args.lag_seconds})


def commit_latency(args):
    request = xadd_command(b"x" * args.payload) + command(b"WAIT", b"1", b"0")
    samples = []
    with redis_pair() as pair, connect_raw(pair.primary_port) as sock:
        for i in range(WARMUP + args.commits):
            t0 = time.perf_counter_ns()
            reply = exchange(sock, request, 3)  # the XADD's two lines, then ":<acks>"
            elapsed = time.perf_counter_ns() - t0
            if not reply.endswith(b":1\r\n"):
                raise RuntimeError("unexpected reply to XADD + WAIT: %r" % reply)
            if i >= WARMUP:
                samples.append(elapsed)
    emit("redis_commit_latency_1_ack", latency_fields(samples))


def main():
    args = parse_args()
    check_prerequisites()
    # Stopped with SIGTERM, still stop the servers and remove their directories.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    replica_catchup(args)
    replication_lag(args)
    commit_latency(args)


if __name__ == "__main__":
    main()
