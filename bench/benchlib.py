"""What the bench scripts share: how to start nsqd and the tools from this checkout, free
ports, /proc readings, a minimal HTTP request, stopping a process."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env() -> dict:
    """The environment for nsqd and the tools: this checkout's src/ first."""
    out = dict(os.environ)
    src = os.path.join(ROOT, "src")
    out["PYTHONPATH"] = src + (os.pathsep + out["PYTHONPATH"] if out.get("PYTHONPATH") else "")
    return out


def command(script: str, module: str) -> list[str]:
    """The installed console script if present, else ``python -m module`` from src/."""
    path = os.path.join(VENV_BIN, script)
    if os.access(path, os.X_OK):
        return [path]
    return [sys.executable, "-m", module]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM) in bytes, 0 if unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss(pid: int) -> int:
    return proc_status(pid, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def http(port: int, method: str, path: str, body: bytes = b"",
         timeout: float = 5.0) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                  f"Connection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def ping(port: int, timeout: float = 0.2) -> bool:
    try:
        return http(port, "GET", "/ping", timeout=timeout) == (200, b"OK")
    except (OSError, ValueError, IndexError):
        return False


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a clean stop), SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
