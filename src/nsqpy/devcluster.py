"""``make run``: a local cluster of nsqlookupd, nsqd and nsqadmin on the default ports.

Each daemon runs from this venv; their logs go to the terminal.  Ctrl-C stops them all
cleanly (nsqd flushes its queues to the data dir, so the next run starts where this
one stopped).
"""
import argparse
import os
import signal
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)


def spawn(name: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([os.path.join(BIN, name), *args])


def main() -> None:
    ap = argparse.ArgumentParser(prog="devcluster")
    ap.add_argument("--data-dir", default=".run-data")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    h = args.host
    nsqd_data = os.path.join(args.data_dir, "nsqd")
    os.makedirs(nsqd_data, exist_ok=True)
    procs = {
        "nsqlookupd": spawn("nsqlookupd", f"--tcp-address={h}:4160", f"--http-address={h}:4161",
                            f"--broadcast-address={h}"),
        "nsqd": spawn("nsqd", f"--tcp-address={h}:4150", f"--http-address={h}:4151",
                      f"--data-path={nsqd_data}", f"--broadcast-address={h}",
                      f"--lookupd-tcp-address={h}:4160"),
        "nsqadmin": spawn("nsqadmin", f"--http-address={h}:4171",
                          f"--lookupd-http-address={h}:4161"),
    }
    time.sleep(0.8)
    print(f"""
nsqadmin    http://{h}:4171
nsqd        TCP {h}:4150   HTTP http://{h}:4151
nsqlookupd  TCP {h}:4160   HTTP http://{h}:4161
data        {os.path.abspath(nsqd_data)}

publish:  curl -d 'hello' 'http://{h}:4151/pub?topic=test'
consume:  .venv/bin/python -c "import nsq; nsq.Reader(message_handler=lambda m: print(m.body) or True, lookupd_http_addresses=['http://{h}:4161'], topic='test', channel='tour'); nsq.run()"
Ctrl-C stops the cluster.
""", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for name, p in procs.items():
            if p.poll() is not None and p.returncode != 0:
                print(f"{name} exited with {p.returncode}", file=sys.stderr, flush=True)
                stopping = True
        time.sleep(0.2)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


if __name__ == "__main__":
    main()
