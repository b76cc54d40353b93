"""What the Python tests share: records in the log format written by hand
from docs/format.md, stubs generated at test time from proto/ alone (Debian's
grpc_tools), and a real ringlogd on a loopback port of its own."""
import os
import signal
import struct
import subprocess
import sys
import time

from grpc_tools import protoc


def crc32c(data, crc=0xFFFFFFFF):
    # Castagnoli, reflected (docs/format.md): bit by bit, the spec's own words.
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc


def record(payload, ts=1, etype=7):
    # Header, CRC32C of header and payload, payload, padding to 8 bytes.
    head = struct.pack("<QBBH", ts, etype, 0, len(payload))
    crc = crc32c(head + payload) ^ 0xFFFFFFFF
    pad = (-(16 + len(payload))) % 8
    return head + struct.pack("<I", crc) + payload + b"\0" * pad


def records(payloads):
    return b"".join(record(p) for p in payloads)


def decode(buf):
    out, pos = [], 0
    while pos < len(buf):
        ts, etype, flags, n, crc = struct.unpack_from("<QBBHI", buf, pos)
        payload = buf[pos + 16:pos + 16 + n]
        assert crc32c(buf[pos:pos + 12] + payload) ^ 0xFFFFFFFF == crc, "bad checksum"
        out.append((etype, flags, payload))
        pos += 16 + n + (-(16 + n)) % 8
    return out


def generate_stubs(proto_dir, out_dir, protos):
    """Python stubs of `protos` (paths under proto_dir) into out_dir, which
    joins sys.path so that they can be imported."""
    os.makedirs(out_dir, exist_ok=True)
    rc = protoc.main(["protoc", "-I" + proto_dir, "--python_out=" + out_dir,
                      "--grpc_python_out=" + out_dir] + protos)
    if rc != 0:
        raise RuntimeError("protoc failed on " + " ".join(protos))
    sys.path.insert(0, out_dir)


class Node:
    """A ringlogd with its data, port file and log in `directory`, started
    with `args` and only those: no RINGLOG_* from the caller's environment."""

    def __init__(self, ringlogd, directory, args):
        port_file = os.path.join(directory, "port")
        self.log = open(os.path.join(directory, "log"), "w")
        self.process = subprocess.Popen(
            [ringlogd, "--data_dir=" + os.path.join(directory, "data"),
             "--listen=127.0.0.1:0", "--port_file=" + port_file] + args,
            stdout=self.log, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("RINGLOG_")})
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError("ringlogd exited at start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ringlogd wrote no port file")
            time.sleep(0.02)
        with open(port_file) as f:
            self.target = "127.0.0.1:" + f.read().strip()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log.close()
