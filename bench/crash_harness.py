"""Crash harness: publish and consume under load while nsqd is SIGKILLed and restarted.

For each mode (default, ``--mem-queue-size=0``, ``--durable``):

* a publisher pipelines PUBs (``--window`` outstanding) whose bodies are unique sequence
  numbers, and records a number as *acknowledged* when its OK arrives;
* a consumer (RDY ``--rdy``) holds every message in flight for ``--hold`` seconds, then
  FINs it, and records every receipt;
* ``--kills`` times, after a random ``--min-gap``..``--max-gap`` seconds, nsqd gets SIGKILL
  and is restarted at once on the same data dir and ports (clients reconnect);
* at the end publishing stops and the consumer drains everything left (including what
  reappears after the in-flight timeout).

lost = acknowledged and never received; duplicates = receipts beyond the first.

    .venv/bin/python bench/crash_harness.py --kills 20            # the table in docs
    .venv/bin/python bench/crash_harness.py --modes durable --kills 3 --json
"""
import argparse
import asyncio
import collections
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

MODES = {
    "default": [],
    "mem-queue-size=0": ["--mem-queue-size=0"],
    "durable": ["--durable"],
}
TOPIC = "crash"
CHANNEL = "c"
MAGIC = b"  V2"
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nsqd:
    def __init__(self, data_dir: str, extra, nsqd_bin: str):
        self.data_dir = data_dir
        self.tcp = free_port()
        self.http = free_port()
        self.args = [nsqd_bin, f"--data-path={data_dir}", f"--tcp-address=127.0.0.1:{self.tcp}",
                     f"--http-address=127.0.0.1:{self.http}", "--log-level=warn",
                     "--msg-timeout=5s", *extra]
        self.proc = None
        self.log = open(os.path.join(data_dir, "nsqd.log"), "ab")

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/ping", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nsqd exited {self.proc.returncode}")
                time.sleep(0.02)
        raise RuntimeError("nsqd did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def channel_state(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/stats?format=json&topic={TOPIC}",
                                    timeout=2) as r:
            doc = json.load(r)
        pending = 0
        for t in doc.get("topics") or []:
            pending += t["depth"]
            for c in t.get("channels") or []:
                pending += c["depth"] + c["in_flight_count"] + c["deferred_count"]
        return pending


async def read_frame(reader):
    hdr = await reader.readexactly(8)
    size, ftype = struct.unpack(">ii", hdr)
    return ftype, await reader.readexactly(size - 4)


class Run:
    def __init__(self, nsqd: Nsqd, window: int, rdy: int, hold: float, body_size: int,
                 rate: float = 0):
        self.rate = rate
        self.t0 = time.monotonic()
        self.nsqd = nsqd
        self.window = window
        self.rdy = rdy
        self.hold = hold
        self.body_size = body_size
        self.acked = set()
        self.received = collections.Counter()
        self.next_seq = 0
        self.publishing = True
        self.stopping = False
        self.last_receipt = time.monotonic()

    async def _connect(self):
        while not self.stopping:
            try:
                r, w = await asyncio.open_connection("127.0.0.1", self.nsqd.tcp)
                w.write(MAGIC)
                return r, w
            except OSError:
                await asyncio.sleep(0.05)
        return None, None

    # -- publisher --------------------------------------------------------------------------
    async def publisher(self) -> None:
        cmd = f"PUB {TOPIC}\n".encode()
        while self.publishing:
            r, w = await self._connect()
            if r is None:
                return
            outstanding = collections.deque()
            room = asyncio.Event()
            room.set()

            async def reader():
                while True:
                    ftype, data = await read_frame(r)
                    if ftype == 0 and data == b"OK":
                        self.acked.add(outstanding.popleft())
                        room.set()
                    elif ftype == 0 and data == b"_heartbeat_":
                        w.write(b"NOP\n")
                    elif ftype == 1:
                        raise ConnectionError(data.decode())
            rt = asyncio.ensure_future(reader())
            try:
                while self.publishing and not rt.done():
                    if len(outstanding) >= self.window:
                        room.clear()
                        waiter = asyncio.ensure_future(room.wait())
                        await asyncio.wait([rt, waiter], return_when=asyncio.FIRST_COMPLETED)
                        waiter.cancel()
                        continue
                    if self.rate:
                        ahead = self.next_seq / self.rate - (time.monotonic() - self.t0)
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                    batch = []
                    for _ in range(min(64, self.window - len(outstanding))):
                        seq = self.next_seq
                        self.next_seq += 1
                        body = str(seq).encode().ljust(self.body_size, b".")
                        outstanding.append(seq)
                        batch.append(cmd + struct.pack(">i", len(body)) + body)
                    w.write(b"".join(batch))
                    await w.drain()
                if not rt.done():       # stop: wait for the last answers
                    try:
                        await asyncio.wait_for(asyncio.shield(rt), 5)
                    except asyncio.TimeoutError:
                        pass
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                rt.cancel()
                w.close()
            # numbers still outstanding were never acknowledged: not counted
            if self.publishing:
                await asyncio.sleep(0.05)

    # -- consumer -------------------------------------------------------------------------------
    async def consumer(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping:
            r, w = await self._connect()
            if r is None:
                return
            try:
                w.write(f"SUB {TOPIC} {CHANNEL}\n".encode() + f"RDY {self.rdy}\n".encode())
                while True:
                    ftype, data = await read_frame(r)
                    if ftype == 2:
                        msg_id = data[10:26]
                        seq = int(data[26:].split(b".", 1)[0])
                        self.received[seq] += 1
                        self.last_receipt = time.monotonic()
                        if self.hold:
                            loop.call_later(self.hold, self._fin, w, msg_id)
                        else:
                            self._fin(w, msg_id)
                    elif ftype == 0 and data == b"_heartbeat_":
                        w.write(b"NOP\n")
                    elif ftype == 1 and not data.startswith(b"E_FIN_FAILED"):
                        raise ConnectionError(data.decode())
            except (OSError, asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                w.close()
            await asyncio.sleep(0.05)

    @staticmethod
    def _fin(w, msg_id: bytes) -> None:
        if not w.is_closing():
            w.write(b"FIN " + msg_id + b"\n")


async def run_mode(name, extra, kills, args) -> dict:
    data_dir = tempfile.mkdtemp(prefix=f"crash-{name.replace('=', '')}-")
    nsqd = Nsqd(data_dir, extra, args.nsqd)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, nsqd.start)
    run = Run(nsqd, args.window, args.rdy, args.hold, args.body_size, args.rate)
    pub = asyncio.ensure_future(run.publisher())
    con = asyncio.ensure_future(run.consumer())
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    try:
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(args.min_gap, args.max_gap))
            nsqd.kill()
            await loop.run_in_executor(None, nsqd.start)
        await asyncio.sleep(rng.uniform(args.min_gap, args.max_gap))
        run.publishing = False
        await pub
        elapsed = time.monotonic() - t0
        run.hold = 0           # draining: finish at once
        # drain: until nothing is queued, in flight or deferred and receipts stopped
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            pending = await loop.run_in_executor(None, nsqd.channel_state)
            if pending == 0 and time.monotonic() - run.last_receipt > 1.0:
                break
    finally:
        run.stopping = True
        con.cancel()
        await loop.run_in_executor(None, nsqd.stop)
    lost = len(run.acked - set(run.received))
    dups = sum(n - 1 for n in run.received.values() if n > 1)
    result = {"mode": name, "kills": kills, "published": run.next_seq,
              "acknowledged": len(run.acked), "lost": lost, "duplicates": dups,
              "acked_per_s": round(len(run.acked) / elapsed), "seconds": round(elapsed, 1),
              "data_dir": data_dir}
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
        result.pop("data_dir")
    return result


def table(results) -> str:
    lines = ["| mode | kills | acknowledged | lost | duplicates | acknowledged msgs/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['mode']} | {r['kills']} | {r['acknowledged']:,} | {r['lost']:,} | "
                     f"{r['duplicates']:,} | {r['acked_per_s']:,} |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--min-gap", type=float, default=1.0, help="seconds between kills (min)")
    p.add_argument("--max-gap", type=float, default=4.0, help="seconds between kills (max)")
    p.add_argument("--window", type=int, default=500, help="PUBs in flight (pipelining)")
    p.add_argument("--rdy", type=int, default=1000)
    p.add_argument("--hold", type=float, default=0.5, help="seconds a message stays in flight")
    p.add_argument("--body-size", type=int, default=64)
    p.add_argument("--rate", type=float, default=0, help="max PUBs/s (0: as fast as acknowledged)")
    p.add_argument("--drain-timeout", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--nsqd", default=os.path.join(BIN, "nsqd"))
    p.add_argument("--keep", action="store_true", help="keep the data dirs")
    p.add_argument("--json", action="store_true", help="print one JSON object per mode")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    results = []
    for name in args.modes.split(","):
        res = asyncio.run(run_mode(name, MODES[name], args.kills, args))
        results.append(res)
        if args.json:
            print(json.dumps(res), flush=True)
        else:
            print(f"{name}: {res}", file=sys.stderr, flush=True)
    if not args.json:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
