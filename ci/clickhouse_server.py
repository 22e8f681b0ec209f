"""A real ClickHouse server on loopback for mempulse-sink-clickhouse's tests and bench.

The server is the ClickHouse engine that PyPI's `chdb-core` ships. `chdb-core` runs ClickHouse
in-process, but a one-shot query that executes `SYSTEM START LISTEN HTTP` opens ClickHouse's own
HTTP interface (the one the `clickhouse` crate speaks) for as long as that query runs. So the
`serve` command runs one query that starts the listener and then sleeps one second per row of
`numbers(lifetime)`; `stop` kills that query over HTTP, which ends the process cleanly.

ClickHouse reads `config.xml` from the working directory of the process: `serve` runs in
`<state>/server`, whose `config.xml` sets `listen_host` 127.0.0.1 and the chosen `http_port`.

Usage (normally through ci/clickhouse.sh, which provisions the venv):
  clickhouse_server.py start  --state DIR --python VENV_PYTHON   prints the URL
  clickhouse_server.py stop   --state DIR
  clickhouse_server.py status --state DIR                        prints the URL, exit 1 if down
  clickhouse_server.py serve  --state DIR --port N --lifetime S  (internal: the server process)

Only the standard library is used here, except in `serve`, which imports `chdb`.
"""

import argparse
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PING_TIMEOUT_S = 2.0
START_ATTEMPTS = 3
# The keep-alive query's alias, so `stop` can find it in system.processes.
KEEPALIVE = "mempulse_keepalive"
DEFAULT_LIFETIME_S = 6 * 3600


def log(msg):
    print(f"clickhouse: {msg}", file=sys.stderr, flush=True)


def http(url, sql, timeout=PING_TIMEOUT_S):
    req = urllib.request.Request(url + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read().decode()


def ping(url):
    try:
        return http(url, "SELECT 1").strip() == "1"
    except (OSError, urllib.error.URLError):
        return False


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process would still answer; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def paths(state):
    return {
        "url": os.path.join(state, "url"),
        "pid": os.path.join(state, "pid"),
        "log": os.path.join(state, "server.log"),
        "server": os.path.join(state, "server"),
        "lock": os.path.join(state, "lock"),
    }


def running_url(state):
    """The URL of a server this state dir started that answers now, else ''."""
    p = paths(state)
    url, pid = read(p["url"]), read(p["pid"])
    if url and pid.isdigit() and alive(int(pid)) and ping(url):
        return url
    return ""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, state, port):
    p = paths(state)
    os.makedirs(p["server"], exist_ok=True)
    lifetime = os.environ.get("MEMPULSE_CLICKHOUSE_LIFETIME_S", str(DEFAULT_LIFETIME_S))
    cmd = [args.python, os.path.abspath(__file__), "serve", "--state", state,
           "--port", str(port), "--lifetime", lifetime]
    with open(p["log"], "ab") as logf:
        # Its own session: the server outlives the test process or shell that started it.
        proc = subprocess.Popen(cmd, cwd=p["server"], stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=logf, start_new_session=True)
    return proc


def start(args):
    state = os.path.abspath(args.state)
    os.makedirs(state, exist_ok=True)
    p = paths(state)
    with open(p["lock"], "w", encoding="utf-8") as lock:
        # Concurrent test processes start one server.
        fcntl.flock(lock, fcntl.LOCK_EX)
        url = running_url(state)
        if url:
            print(url)
            return 0
        stop_pid(state)
        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = spawn(args, state, port)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline and proc.poll() is None and not ping(url):
                time.sleep(0.1)
            if proc.poll() is None and ping(url):
                write(p["pid"], str(proc.pid))
                write(p["url"], url)
                log(f"server pid {proc.pid} on {url}, data in {p['server']}")
                print(url)
                return 0
            log(f"attempt {attempt}: server did not answer on {url}; see {p['log']}")
            terminate(proc.pid)
        log(f"giving up after {START_ATTEMPTS} attempts; log: {p['log']}")
        return 1


def terminate(pid, url=""):
    """Stops the server: kills its keep-alive query, then signals, each with a deadline."""
    if not alive(pid):
        return
    if url:
        try:
            http(url, f"KILL QUERY WHERE query LIKE '%{KEEPALIVE}%' "
                      f"AND query NOT LIKE '%KILL QUERY%' SYNC", timeout=STOP_TIMEOUT_S)
        except (OSError, urllib.error.URLError):
            pass
    for sig, wait_s in ((None, STOP_TIMEOUT_S), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if sig is not None:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.1)
    log(f"pid {pid} still alive after SIGKILL")


def stop_pid(state):
    p = paths(state)
    pid, url = read(p["pid"]), read(p["url"])
    if pid.isdigit():
        terminate(int(pid), url)
    for f in (p["pid"], p["url"]):
        if os.path.exists(f):
            os.remove(f)


def stop(args):
    state = os.path.abspath(args.state)
    if not os.path.isdir(state):
        return 0
    p = paths(state)
    with open(p["lock"], "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stop_pid(state)
    log("stopped")
    return 0


def status(args):
    url = running_url(os.path.abspath(args.state))
    if url:
        print(url)
        return 0
    log("not running (start it with ci/clickhouse.sh start)")
    return 1


CONFIG = """<clickhouse>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{port}</http_port>
</clickhouse>
"""


def serve(args):
    state = os.path.abspath(args.state)
    server = paths(state)["server"]
    os.makedirs(server, exist_ok=True)
    with open(os.path.join(server, "config.xml"), "w", encoding="utf-8") as f:
        f.write(CONFIG.format(port=args.port))
    # ClickHouse looks for config.xml in the working directory.
    os.chdir(server)
    from chdb import _chdb  # noqa: PLC0415 (only the server process needs the engine)

    sql = ("SYSTEM START LISTEN HTTP; "
           f"SELECT max(sleepEachRow(1)) AS {KEEPALIVE} FROM numbers({int(args.lifetime)}) "
           "SETTINGS max_block_size = 1")
    result = _chdb.query(sql, "CSV", path=os.path.join(server, "data"))
    if result.has_error():
        log(f"serve ended: {result.error_message()}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "serve"])
    parser.add_argument("--state", required=True, help="state dir (url, pid, log, data)")
    parser.add_argument("--python", default=sys.executable, help="python with chdb-core")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=int, default=DEFAULT_LIFETIME_S,
                        help="seconds after which the server stops by itself")
    args = parser.parse_args()
    return {"start": start, "stop": stop, "status": status, "serve": serve}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
