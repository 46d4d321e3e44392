"""``make run``: a local node (nsqd now; nsqlookupd and nsqadmin join when they exist).

Starts each daemon from this venv on the default ports, prints where they listen,
and stops them cleanly on Ctrl-C.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

BIN = os.path.dirname(sys.executable)


def main() -> None:
    ap = argparse.ArgumentParser(prog="devcluster")
    ap.add_argument("--data-dir", default=".run-data")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()
    nsqd_data = os.path.join(args.data_dir, "nsqd")
    os.makedirs(nsqd_data, exist_ok=True)
    h = args.host
    procs = []
    nsqd = shutil.which("nsqd", path=BIN)
    procs.append(subprocess.Popen([nsqd, f"--tcp-address={h}:4150", f"--http-address={h}:4151",
                                   f"--data-path={nsqd_data}", f"--broadcast-address={h}"]))
    time.sleep(0.5)
    print(f"""
nsqd  TCP   {h}:4150
nsqd  HTTP  http://{h}:4151   (try: curl -d 'hello' 'http://{h}:4151/pub?topic=test')
data        {os.path.abspath(nsqd_data)}
Ctrl-C stops the node.
""", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait()


if __name__ == "__main__":
    main()
