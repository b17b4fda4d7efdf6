#!/usr/bin/env python3
"""`make faults` and `make faults-quick`: the system driven through faults,
each scored on what was acknowledged and what the server then holds.

Every scenario starts real processes (`safecity-server` on its embedded
store or on a PostgreSQL started here, `safecity-edge run` on simulated
RTSP cameras and a pillar), puts them under load, injects one fault, lets
them recover on their own (nothing is restarted by hand except the process
a fault killed), and then asks the server's search API for everything
stored. A row of the table says:

- acknowledged: events the server answered 200 for (a load generator that
  speaks the edge's protocol: one batch at a time, the same ids resent
  until accepted), or pillar alarms the edge answered 202 for;
- lost: acknowledged and not found by a search afterwards (must be 0);
- duplicated: an id stored twice in any letter case, or, through an edge,
  one plate stored twice by one camera within 10 s (a pass sent twice);
- longest gap: the longest time between two accepted batches (or, through
  an edge, between an alarm press and its arrival at the server);
- searches failed: exact searches, every 0.5 s, that did not answer 200;
- recovered by itself: the backlog drained and searches answered again
  with no process restarted by hand.

`--quick` (run by `make test`) keeps each fault short; without it the
faults run at full length, with full disks, the rural link (a network
namespace: tbf for the rate, nftables for the loss, a relay for the
latency) and a 30 s database stop, every decoder is fuzzed for 60 s, and
the table goes to `docs/reliability.md`. `--merge` re-runs some scenarios
and replaces their rows in an earlier run's table; `--soak MINUTES` runs
the soak instead. Scenarios that need root (tmpfs, namespaces) or
PostgreSQL say so and are skipped when those are missing, except under CI
(`CI` set), where a skip is a failure. Exits 1 when anything acknowledged
was lost or duplicated, or a scenario did not recover by itself.

Python standard library only. Usage:

    scripts/faults.py [--quick] [--only NAME[,NAME]] [--markdown FILE] [--json FILE] [--merge]
    scripts/faults.py --soak MINUTES [--json FILE] [--markdown FILE]
"""

import argparse
import base64
import glob
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "target" / "release" / "safecity-server"
FUZZ = ROOT / "target" / "release" / "safecity-fuzz"
EDGE = ROOT / "target" / "release" / "safecity-edge"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
IS_ROOT = os.geteuid() == 0


class Skip(Exception):
    """A scenario cannot run here (what is missing is the message)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ulid(ms: int) -> str:
    n = (ms << 80) | random.getrandbits(80)
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def rfc3339(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_ts(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def http(method, url, token=None, body=None, timeout=10.0, headers=None):
    """(status, parsed JSON or text); status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    h = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    except (OSError, ValueError) as e:
        return 0, str(e)
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_for(what, check, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


# ---------------------------------------------------------------------------
# Processes


class Postgres:
    """A PostgreSQL cluster of its own on a loopback port (as `postgres`
    when this runs as root, since PostgreSQL refuses root)."""

    def __init__(self, tmp: Path):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise Skip("PostgreSQL is not installed (scripts/setup-postgres.sh installs it)")
        self.bin = Path(bins[-1]).parent
        self.dir = tmp / "pg"
        self.dir.mkdir()
        self.port = free_port()
        self.runas = []
        if IS_ROOT:
            user = "postgres" if subprocess.run(["id", "postgres"], capture_output=True).returncode == 0 else "nobody"
            shutil.chown(self.dir, user)
            os.chmod(tmp, 0o755)
            self.runas = ["runuser", "-u", user, "--"]
        self.run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C", "--no-sync")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, tool, *args):
        out = subprocess.run(self.runas + [str(self.bin / tool), *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed: {out.stderr.strip() or out.stdout.strip()}")

    def ctl(self, *args):
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w",
                 "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
                 *args)

    def start(self):
        self.ctl("start")

    def stop(self):
        self.ctl("stop", "-m", "fast")

    def restart(self):
        self.ctl("restart", "-m", "fast")

    def close(self):
        try:
            self.stop()
        except RuntimeError:
            pass


class Process:
    """A child process of the suite: killed with SIGKILL, or closed with
    SIGTERM and, after `stop_wait` s, SIGKILL."""

    proc = None
    stop_wait = 10

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_wait)
            except subprocess.TimeoutExpired:
                self.kill()


class Server(Process):
    """`safecity-server` on a loopback port, its embedded store in
    `data_dir` or its events in `pg`."""

    def __init__(self, tmp: Path, data_dir: Path, pg: Postgres | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = secrets.token_hex(16)
        self.env = {**os.environ, "SAFECITY_ADMIN_TOKEN": self.admin}
        self.args = [str(SERVER), "--data-dir", str(data_dir)] + (["--postgres", pg.url] if pg else [])
        self.log = open(tmp / "server.log", "ab")
        self.proc = None

    def token(self, role, name) -> str:
        out = subprocess.run(self.args + ["token", "create", "--role", role, "--name", name],
                             capture_output=True, text=True, env=self.env)
        if out.returncode != 0:
            raise RuntimeError(f"token create: {out.stderr.strip()}")
        return out.stdout.strip()

    def start(self, timeout=60):
        self.proc = subprocess.Popen(self.args + ["--listen", f"127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=self.log, env=self.env)
        wait_for("the server's /healthz", lambda: http("GET", self.url + "/healthz", timeout=2)[0] == 200, timeout)

    def search(self, **params):
        params.setdefault("reason", "fault suite")
        q = urllib.parse.urlencode(params, doseq=True)
        return http("GET", f"{self.url}/api/v1/search?{q}", token=self.admin, timeout=30)

    def stored(self, **filters) -> list:
        """Every event matching `filters`, all pages."""
        out, cursor = [], None
        while True:
            params = dict(filters, limit=500)
            if cursor:
                params["cursor"] = cursor
            status, page = self.search(**params)
            if status != 200:
                raise RuntimeError(f"listing events failed: {status} {page}")
            out += [r["event"] for r in page["results"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return out


class Simulator(Process):
    """`safecity-edge simulate`: cameras and a pillar over RTSP on a fixed
    port, so that it can vanish and come back at the same URLs."""

    def __init__(self, tmp: Path, cameras: int, seed: int, seconds: int):
        self.port = free_port()
        self.cmd = [str(EDGE), "simulate", "--cameras", str(cameras), "--pillars", "1",
                    "--rtsp-port", str(self.port), "--width", "640", "--height", "360",
                    "--fps", "10", "--loop", "60", "--seed", str(seed),
                    "--duration", str(seconds + 600)]
        self.log = open(tmp / "simulate.log", "ab")
        self.streams = cameras + 1
        self.proc = None
        self.urls = {}

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        urls = {}
        while len(urls) < self.streams:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the simulator stopped before serving its streams")
            words = line.split()
            if words and words[0] == "stream":
                urls[words[1]] = words[3]
        threading.Thread(target=lambda p=self.proc: [None for _ in p.stdout], daemon=True).start()
        self.urls = urls

    def close(self):
        self.kill()


class Edge(Process):
    """`safecity-edge run` on the simulator's streams, forwarding to a server."""

    stop_wait = 15

    def __init__(self, tmp: Path, sim: Simulator, server_url: str, token: str, spool: Path,
                 ca: Path | None = None, netns: str | None = None):
        self.api_port = free_port()
        self.config = tmp / "edge.toml"
        lines = ['edge_id = "edge-faults"', "[server]", f'url = "{server_url}"', f'token = "{token}"']
        if ca:
            lines.append(f'ca = "{ca}"')
        lines += ["[spool]", f'dir = "{spool}"', "[api]", f'listen = "127.0.0.1:{self.api_port}"',
                  "[models]", "threads = 1", "workers = 1"]
        for cam, url in sorted(sim.urls.items()):
            kind = "pillars" if cam.startswith("pillar") else "cameras"
            lines += [f"[[{kind}]]", f'id = "{cam}"', f'url = "{url}"', "lat = 43.23", "lon = 76.94",
                      f"fps = {2 if kind == 'pillars' else 5}"]
        self.config.write_text("\n".join(lines) + "\n")
        self.log = open(tmp / "edge.log", "ab")
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc = None
        self.api = f"http://127.0.0.1:{self.api_port}"

    def start(self):
        self.proc = subprocess.Popen(self.prefix + [str(EDGE), "run", "--config", str(self.config)],
                                     stdout=self.log, stderr=self.log)

    def status(self):
        return self.get("/api/v1/status")

    def get(self, path):
        cmd = self.prefix + ["python3", "-c", f"import urllib.request,sys;sys.stdout.write(urllib.request.urlopen('{self.api}{path}',timeout=5).read().decode())"]
        if not self.prefix:
            s, body = http("GET", self.api + path, timeout=5)
            return body if s else None
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            return None
        try:
            return json.loads(out.stdout)
        except ValueError:
            return out.stdout

    def press(self):
        """A pillar press: (alarm id, press time), or (None, why) when the edge did not take it."""
        body = json.dumps({"pillar_id": "pillar1", "source": "button"})
        t = time.time()
        if not self.prefix:
            s, reply = http("POST", self.api + "/api/v1/alarm", body=json.loads(body), timeout=5)
        else:
            code = ("import urllib.request,sys;r=urllib.request.Request("
                    f"'{self.api}/api/v1/alarm',data=sys.argv[1].encode(),"
                    "headers={'Content-Type':'application/json'},method='POST');"
                    "sys.stdout.write(urllib.request.urlopen(r,timeout=5).read().decode())")
            out = subprocess.run(self.prefix + ["python3", "-c", code, body], capture_output=True, text=True)
            s, reply = (202, json.loads(out.stdout)) if out.returncode == 0 else (0, out.stderr)
        return (reply["id"], t) if s == 202 else (None, f"{s or 'no answer'}: {reply}")

    def drained(self):
        st = self.status()
        return isinstance(st, dict) and st["spool"]["pending_events"] == 0 and st["spool"]["pending_alarms"] == 0


# ---------------------------------------------------------------------------
# Load


def plate_event(n: int, camera: str, edge_id: str, plate: str, snapshot: bytes | None):
    now = time.time()
    e = {
        "id": ulid(int(now * 1000)), "kind": "plate_read", "edge_id": edge_id, "camera_id": camera,
        "ts": rfc3339(now),
        "plate": {"text": plate, "display": f"{plate[:3]} {plate[3:6]} {plate[6:]}", "confidence": 0.93,
                  "format": "kz_private", "region": plate[6:], "bbox": [812, 540, 96, 24]},
        "vehicle": {"class": "car", "colour": "white", "confidence": 0.9, "bbox": [700, 380, 320, 210],
                    "track_id": n},
    }
    if snapshot:
        e["snapshot"] = base64.b64encode(snapshot).decode()
    return e


def alarm_event(camera: str, edge_id: str):
    now = time.time()
    return {"id": ulid(int(now * 1000)), "kind": "panic_alarm", "edge_id": edge_id, "camera_id": camera,
            "ts": rfc3339(now), "alarm": {"source": "button"}}


class Load(threading.Thread):
    """Speaks the edge's protocol: one batch at a time, resent with the same
    ids until the server accepts it (200), at about `rate` events a second.
    Every `alarm_every`-th batch carries a panic alarm too."""

    HOT = "777FLT02"

    def __init__(self, server: Server, token: str, edge_id: str, rate=200, batch=20,
                 snapshot_bytes=0, alarm_every=0):
        super().__init__(daemon=True)
        self.server, self.token, self.edge_id = server, token, edge_id
        self.camera = "fault-cam"
        self.rate, self.batch, self.snapshot_bytes, self.alarm_every = rate, batch, snapshot_bytes, alarm_every
        self.acked = {}  # id -> acknowledged at
        self.alarms = {}  # alarm id -> (sent first, acknowledged at)
        self.statuses = {}
        self.refused = 0
        self.stop_sending = threading.Event()
        self.last_ack = None
        self.longest_gap = 0.0
        self.pending = None
        self.done = threading.Event()
        self.n = 0

    def next_batch(self):
        batch = []
        for _ in range(self.batch):
            self.n += 1
            plate = self.HOT if self.n % 50 == 0 else f"{self.n % 1000:03d}{random.choice(['ABC', 'KZA', 'TRK', 'BUS'])}02"
            snap = secrets.token_bytes(self.snapshot_bytes) if self.snapshot_bytes else None
            batch.append(plate_event(self.n, self.camera, self.edge_id, plate, snap))
        if self.alarm_every and (self.n // self.batch) % self.alarm_every == 0:
            batch.append(alarm_event("fault-pillar", self.edge_id))
        return batch

    def run(self):
        interval = self.batch / self.rate
        while True:
            if self.pending is None:
                if self.stop_sending.is_set():
                    break
                self.pending = (self.next_batch(), time.time())
            batch, first_sent = self.pending
            t0 = time.time()
            status, reply = http("POST", self.server.url + "/api/v1/events", token=self.token, body=batch, timeout=10)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            now = time.time()
            if status == 200:
                for e in batch:
                    self.acked[e["id"]] = now
                    if e["kind"] == "panic_alarm":
                        self.alarms[e["id"]] = (first_sent, now)
                if self.last_ack is not None:
                    self.longest_gap = max(self.longest_gap, now - self.last_ack)
                self.last_ack = now
                self.pending = None
                time.sleep(max(0.0, interval - (now - t0)))
            elif status == 400:
                # The contract's permanent refusal; the generator's events
                # are valid, so this is counted and shows in the table.
                self.refused += len(batch)
                self.pending = None
            else:
                time.sleep(0.25)
        self.done.set()

    def finish(self, timeout):
        """Stops making batches and waits for the last one to be accepted."""
        self.stop_sending.set()
        return self.done.wait(timeout)


class Searches(threading.Thread):
    """An investigator: an exact search every 0.5 s."""

    def __init__(self, server: Server, plate: str):
        super().__init__(daemon=True)
        self.server, self.plate = server, plate
        self.ok = self.failed = 0
        self.last_ok = None
        self.longest_gap = 0.0
        self.failed_after = None  # the last failure's time
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            status, _ = self.server.search(plate=self.plate)
            now = time.time()
            if status == 200:
                self.ok += 1
                if self.last_ok is not None:
                    self.longest_gap = max(self.longest_gap, now - self.last_ok)
                self.last_ok = now
            else:
                self.failed += 1
                self.failed_after = now
            self.stop.wait(0.5)


def id_duplicates(events) -> int:
    ids = [e["id"].upper() for e in events]
    return len(ids) - len(set(ids))


def pass_duplicates(events) -> int:
    """One plate stored more than once by one camera within 10 s."""
    seen = {}
    dup = 0
    for e in sorted(events, key=lambda e: e["ts"]):
        text = (e.get("plate") or {}).get("text")
        if not text:
            continue
        key = (e["camera_id"], text)
        t = parse_ts(e["ts"])
        if key in seen and t - seen[key] <= 10.0:
            dup += 1
        seen[key] = t
    return dup


def load_row(fault, running, server, load, searches, recovered, extra=""):
    stored = server.stored(camera=[load.camera, "fault-pillar"])
    stored_ids = {e["id"].upper() for e in stored}
    lost = [i for i in load.acked if i.upper() not in stored_ids]
    statuses = ", ".join(f"{k or 'no answer'}: {v}" for k, v in sorted(load.statuses.items()))
    return {
        "fault": fault, "running": running,
        "acknowledged": len(load.acked), "lost": len(lost),
        "duplicated": id_duplicates(stored),
        "longest_gap_s": round(load.longest_gap, 1),
        "searches": f"{searches.failed} of {searches.ok + searches.failed} failed" if searches else "-",
        "recovered": recovered,
        "notes": (f"answers {statuses}" + (f"; {load.refused} refused" if load.refused else "") + (f"; {extra}" if extra else "")),
    }


def under_load(server, token, fault, *, before, after, drain=120, **load_args):
    """Runs the load and searches, calls `fault()` after `before` s, goes on
    `after` s, then lets the backlog drain. Returns (load, searches, drained)."""
    load = Load(server, token, "edge-faults", **load_args)
    searches = Searches(server, Load.HOT)
    load.start()
    searches.start()
    time.sleep(before)
    fault()
    time.sleep(after)
    drained = load.finish(drain)
    searches.stop.set()
    searches.join()
    return load, searches, drained


# ---------------------------------------------------------------------------
# Scenarios: each returns one row of the table.


def pg_server(tmp):
    pg = Postgres(tmp)
    pg.start()
    server = Server(tmp, tmp / "blobs", pg)
    token = server.token("edge", "edge-faults")
    server.start()
    return pg, server, token


def scenario_pg_restart(tmp, quick, closers):
    pg, server, token = pg_server(tmp)
    closers += [server.close, pg.close]
    load, searches, drained = under_load(server, token, pg.restart, before=5, after=10 if quick else 30)
    recovered = drained and searches.last_ok is not None and searches.last_ok > (searches.failed_after or 0)
    return load_row("PostgreSQL restart (`pg_ctl restart -m fast`)", "ingest 200 events/s, exact search every 0.5 s",
                    server, load, searches, recovered)


def scenario_pg_stop(tmp, quick, closers):
    pg, server, token = pg_server(tmp)
    closers += [server.close, pg.close]
    stop_s = 10 if quick else 30

    def fault():
        pg.stop()
        time.sleep(stop_s)
        pg.start()

    load, searches, drained = under_load(server, token, fault, before=5, after=10 if quick else 30)
    recovered = drained and searches.last_ok is not None and searches.last_ok > (searches.failed_after or 0)
    return load_row(f"PostgreSQL stopped {stop_s} s", "ingest 200 events/s, exact search every 0.5 s",
                    server, load, searches, recovered)


def scenario_server_kill(tmp, quick, closers):
    server = Server(tmp, tmp / "data")
    token = server.token("edge", "edge-faults")
    server.start()
    closers.append(server.close)
    kills = 3 if quick else 10

    def fault():
        for _ in range(kills):
            server.kill()
            time.sleep(0.5)
            server.start()
            time.sleep(3)

    load, searches, drained = under_load(server, token, fault, before=3, after=3, alarm_every=10)
    recovered = drained and searches.last_ok is not None and searches.last_ok > (searches.failed_after or 0)
    return load_row(f"server SIGKILL x{kills}, restarted 0.5 s later", "ingest 200 events/s with an alarm every 1 s, embedded store",
                    server, load, searches, recovered, extra=f"{len(load.alarms)} alarms acknowledged")


class Tmpfs:
    """A small tmpfs, mounted for one scenario (needs root)."""

    def __init__(self, path: Path, size_mb: int):
        if not IS_ROOT:
            raise Skip("needs root to mount a small tmpfs")
        path.mkdir(parents=True)
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise Skip(f"cannot mount a tmpfs: {out.stderr.strip()}")
        self.path = path

    def fill(self, leave_kb: int) -> Path:
        """A ballast file that leaves about `leave_kb` free."""
        st = os.statvfs(self.path)
        free = st.f_bavail * st.f_frsize
        ballast = self.path / "ballast"
        with open(ballast, "ab") as f:
            f.write(b"\0" * max(0, free - leave_kb * 1024))
        return ballast

    def close(self):
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


def scenario_server_disk(tmp, quick, closers):
    disk = Tmpfs(tmp / "disk", 96)
    closers.append(disk.close)
    server = Server(tmp, disk.path / "data")
    token = server.token("edge", "edge-faults")
    server.start()
    closers.insert(0, server.close)
    full_s = 10 if quick else 30
    seen = {}

    def fault():
        ballast = disk.fill(leave_kb=512)
        deadline = time.time() + 60
        while load.statuses.get(507, 0) == 0 and time.time() < deadline:
            time.sleep(0.2)
        seen["full_at"] = time.time()
        time.sleep(full_s)
        ballast.unlink()

    load = Load(server, token, "edge-faults", snapshot_bytes=8000, alarm_every=5)
    searches = Searches(server, Load.HOT)
    load.start()
    searches.start()
    time.sleep(3)
    fault()
    time.sleep(10)
    drained = load.finish(120)
    searches.stop.set()
    searches.join()
    full = load.statuses.get(507, 0)
    recovered = drained and full > 0
    return load_row(f"server disk full {full_s} s (tmpfs)", "ingest 200 events/s with 8 kB snapshots and an alarm every 0.5 s",
                    server, load, searches, recovered,
                    extra=f"{full} batches answered 507 while full; {len(load.alarms)} alarms acknowledged; "
                          "searches fail while the disk is full because a search is answered only once its audit record is written")


def edge_setup(tmp, closers, cameras=2, spool=None, server_data=None, seconds=900):
    server = Server(tmp, server_data or tmp / "data")
    token = server.token("edge", "edge-faults")
    server.start()
    closers.append(server.close)
    sim = Simulator(tmp, cameras, seed=4200, seconds=seconds)
    sim.start()
    closers.append(sim.close)
    edge = Edge(tmp, sim, server.url, token, spool or tmp / "spool")
    closers.insert(0, edge.close)
    edge.start()
    wait_for("the edge's local API", lambda: edge.status() is not None, 60)
    return server, sim, edge


class Presses(threading.Thread):
    """Presses the pillar every `every` s; keeps each acknowledged alarm."""

    def __init__(self, edge: Edge, every: float):
        super().__init__(daemon=True)
        self.edge, self.every = edge, every
        self.acked = {}  # id -> press time
        self.refused = 0
        self.why = set()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            got, when = self.edge.press()
            if got:
                self.acked[got] = when
            else:
                self.refused += 1
                self.why.add(str(when)[:100])
            self.stop.wait(self.every)


class Arrivals(threading.Thread):
    """Watches the server for panic alarms (a search every 0.5 s) and keeps
    when each id was first seen there."""

    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server = server
        self.seen = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            status, page = self.server.search(kind="panic_alarm", limit=500)
            now = time.time()
            if status == 200:
                for r in page["results"]:
                    self.seen.setdefault(r["event"]["id"].upper(), now)
            self.stop.wait(0.5)


def edge_row(fault, running, server, edge, presses, recovered, extra="", drain=180):
    wait_ok = True
    try:
        wait_for("the edge's spool to drain", edge.drained, drain)
    except RuntimeError:
        wait_ok = False
    stored = server.stored()
    stored_alarms = {e["id"].upper(): e for e in stored if e["kind"] == "panic_alarm"}
    lost = [i for i in presses.acked if i.upper() not in stored_alarms]
    reads = [e for e in stored if e["kind"] in ("plate_read", "vehicle")]
    return {
        "fault": fault, "running": running,
        "acknowledged": len(presses.acked), "lost": len(lost),
        "duplicated": id_duplicates(stored) + pass_duplicates(stored),
        "longest_gap_s": None, "searches": "-",
        "recovered": recovered and wait_ok,
        "notes": f"{len(reads)} vehicle and plate events stored" + (f"; {presses.refused} presses refused ({'; '.join(sorted(presses.why))})" if presses.refused else "") + (f"; {extra}" if extra else ""),
    }


def alarm_latency(row, arrivals: Arrivals, presses: Presses):
    """Press to first seen at the server, for each acknowledged alarm."""
    deadline = time.time() + 30
    while time.time() < deadline and any(i.upper() not in arrivals.seen for i in presses.acked):
        time.sleep(0.5)
    arrivals.stop.set()
    seen = arrivals.seen
    lat = sorted(seen[i.upper()] - t for i, t in presses.acked.items() if i.upper() in seen)
    if lat:
        row["longest_gap_s"] = round(lat[-1], 1)
        row["notes"] += f"; alarm press to server: median {lat[len(lat) // 2]:.1f} s, max {lat[-1]:.1f} s (polled every 0.5 s)"


def scenario_edge_kill(tmp, quick, closers):
    server, sim, edge = edge_setup(tmp, closers)
    kills = 2 if quick else 6
    presses = Presses(edge, 2.0)
    presses.start()
    watch = Arrivals(server)
    watch.start()
    time.sleep(15)
    for _ in range(kills):
        edge.kill()
        time.sleep(1)
        edge.start()
        wait_for("the restarted edge's local API", lambda: edge.status() is not None, 60)
        time.sleep(12)
    presses.stop.set()
    presses.join()
    row = edge_row(f"edge SIGKILL x{kills}, restarted 1 s later", "2 cameras 640x360 and a pillar, pressed every 2 s",
                   server, edge, presses, True)
    alarm_latency(row, watch, presses)
    return row


def scenario_edge_disk(tmp, quick, closers):
    disk = Tmpfs(tmp / "spooldisk", 64)
    closers.append(disk.close)
    server, sim, edge = edge_setup(tmp, closers, spool=disk.path / "spool")
    full_s = 15 if quick else 40
    # The server goes away so that the spool keeps what the cameras read.
    server.kill()
    presses = Presses(edge, 2.0)
    presses.start()
    watch = Arrivals(server)
    watch.start()
    time.sleep(5)
    ballast = disk.fill(leave_kb=256)
    time.sleep(full_s)
    health = edge.get("/healthz")
    presses.stop.set()
    presses.join()
    ballast.unlink()
    server.start()
    st = edge.status() or {}
    row = edge_row(f"edge spool disk full {full_s} s (tmpfs), server away", "2 cameras 640x360 and a pillar, pressed every 2 s",
                   server, edge, presses, True,
                   extra=f"edge /healthz while full: {json.dumps(health)}; plain reads dropped for room: {st.get('spool', {}).get('dropped')}")
    alarm_latency(row, watch, presses)
    return row


def scenario_camera_vanish(tmp, quick, closers):
    server, sim, edge = edge_setup(tmp, closers, cameras=1)
    away_s = 15 if quick else 60
    presses = Presses(edge, 5.0)
    time.sleep(10)
    sim.kill()
    time.sleep(away_s)
    back = time.time()
    sim.start()
    presses.start()

    def online():
        st = edge.status()
        return isinstance(st, dict) and all(s["online"] for s in st["streams"])

    try:
        wait_for("the cameras to be online again", online, 120)
        reconnected = time.time() - back
    except RuntimeError:
        reconnected = None
    time.sleep(10)
    presses.stop.set()
    presses.join()
    status_events = server.stored(kind="camera_status")
    states = [(e["camera_id"], e["status"]["state"]) for e in sorted(status_events, key=lambda e: e["ts"])]
    row = edge_row(f"cameras and pillar gone {away_s} s, then back", "1 camera 640x360 and a pillar",
                   server, edge, presses, reconnected is not None,
                   extra=(f"streams online {reconnected:.1f} s after the cameras came back" if reconnected is not None
                          else "streams not online 120 s after the cameras came back")
                   + f"; status events stored: {len(states)} ({', '.join(sorted({s for _, s in states}))})")
    row["longest_gap_s"] = None if reconnected is None else round(reconnected, 1)
    return row


class DelayRelay(threading.Thread):
    """A TCP relay that holds every chunk `delay` s in each direction: the
    link's latency (this kernel has no netem; loss and rate are done in the
    kernel, with nftables and tbf)."""

    def __init__(self, listen: tuple, target: tuple, delay: float):
        super().__init__(daemon=True)
        self.listen, self.target, self.delay = listen, target, delay
        self.sock = socket.create_server(listen, reuse_port=False)

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.target, timeout=10)
            except OSError:
                conn.close()
                continue
            up.settimeout(None)  # the connect's limit, not the connection's
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    def pump(self, src, dst):
        import queue
        q = queue.Queue()

        def writer():
            while True:
                due, data = q.get()
                time.sleep(max(0.0, due - time.time()))
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=writer, daemon=True).start()
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            q.put((time.time() + self.delay, data))
            if not data:
                return

    def close(self):
        self.sock.close()


def scenario_rural_link(tmp, quick, closers):
    """The edge and its cameras in a network namespace; the link to the
    server slow (64 kbit/s each way), lossy (20 % of packets each way), 1 s
    late each way, and down 30 s every 2 minutes; HTTPS over it."""
    for tool in ("ip", "tc", "nft"):
        if not shutil.which(tool):
            raise Skip(f"needs {tool} (iproute2, nftables) for a network namespace with a shaped link")
    if not IS_ROOT:
        raise Skip("needs root for a network namespace")
    ns = f"scfault{os.getpid() % 10000}"
    host_if, edge_if = f"{ns}h", f"{ns}e"
    host_ip, edge_ip = "10.213.0.1", "10.213.0.2"

    def sh(*cmd, stdin=None):
        out = subprocess.run(cmd, capture_output=True, text=True, input=stdin)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")

    sh("ip", "netns", "add", ns)
    closers.append(lambda: subprocess.run(["ip", "netns", "del", ns], capture_output=True))
    sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", edge_if)
    closers.append(lambda: subprocess.run(["ip", "link", "del", host_if], capture_output=True))
    sh("ip", "link", "set", edge_if, "netns", ns)
    sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
    sh("ip", "link", "set", host_if, "up")
    inside = ["ip", "netns", "exec", ns]
    sh(*inside, "ip", "addr", "add", f"{edge_ip}/30", "dev", edge_if)
    sh(*inside, "ip", "link", "set", edge_if, "up")
    sh(*inside, "ip", "link", "set", "lo", "up")
    for dev, prefix in ((host_if, []), (edge_if, inside)):
        sh(*prefix, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", "64kbit", "burst", "4kb", "limit", "64kb")
    sh(*inside, "nft", "-f", "-", stdin=(
        "table inet lossy {\n"
        f"  chain in {{ type filter hook input priority 0; iifname \"{edge_if}\" numgen random mod 100 < 20 drop; }}\n"
        f"  chain out {{ type filter hook output priority 0; oifname \"{edge_if}\" numgen random mod 100 < 20 drop; }}\n"
        "}\n"))

    certs = tmp / "tls"
    sh("bash", str(ROOT / "scripts" / "tls-certs.sh"), str(certs), host_ip, "127.0.0.1")
    server = Server(tmp, tmp / "data")
    token = server.token("edge", "edge-faults")
    server.args += ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]
    server.url = f"https://127.0.0.1:{server.port}"
    # The suite itself talks to the server on loopback, unshaped.
    import ssl
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx)))
    closers.append(lambda: urllib.request.install_opener(urllib.request.build_opener()))
    server.start()
    closers.append(server.close)
    relay = DelayRelay((host_ip, 8443), ("127.0.0.1", server.port), 1.0)
    relay.start()
    closers.append(relay.close)

    # Cameras on the edge's own network, as on a real site.
    sim = Simulator(tmp, 1, seed=4300, seconds=900)
    sim.cmd = inside + sim.cmd
    sim.start()
    closers.append(sim.close)
    edge = Edge(tmp, sim, f"https://{host_ip}:8443", token, tmp / "spool", ca=certs / "ca.pem", netns=ns)
    closers.insert(0, edge.close)
    edge.start()
    wait_for("the edge's local API", lambda: edge.status() is not None, 60)

    minutes = 2 if quick else 8
    presses = Presses(edge, 30.0)
    presses.start()
    watch = Arrivals(server)
    watch.start()
    start = time.time()
    downs = 0
    while time.time() - start < minutes * 60:
        time.sleep(90)
        sh(*inside, "ip", "link", "set", edge_if, "down")
        downs += 1
        time.sleep(30)
        sh(*inside, "ip", "link", "set", edge_if, "up")
    presses.stop.set()
    presses.join()
    backlog = edge.status() or {}
    drain_from = time.time()
    row = edge_row(f"rural link: 64 kbit/s, 20 % loss and 1 s latency each way, down 30 s every 2 min ({downs} times in {minutes} min)",
                   "1 camera 640x360 and a pillar pressed every 30 s, the edge in a network namespace, HTTPS",
                   server, edge, presses, True, drain=600,
                   extra=f"events waiting when the presses stopped: {backlog.get('spool', {}).get('pending_events')}")
    row["notes"] += (f", all delivered {time.time() - drain_from:.0f} s later" if row["recovered"]
                     else f", not all delivered {time.time() - drain_from:.0f} s later")
    clips_made = len(presses.acked)
    clips_in = metric(server, "safecity_clips_stored_total")
    row["notes"] += f"; pillar clips (0.5-0.9 MB each) at the server by then: {clips_in} of {clips_made}, the rest still on their way"
    alarm_latency(row, watch, presses)
    return row


SCENARIOS = {
    "pg-restart": scenario_pg_restart,
    "pg-stop": scenario_pg_stop,
    "server-kill": scenario_server_kill,
    "server-disk": scenario_server_disk,
    "edge-kill": scenario_edge_kill,
    "edge-disk": scenario_edge_disk,
    "camera-vanish": scenario_camera_vanish,
    "rural-link": scenario_rural_link,
}
QUICK = ["pg-restart", "server-kill", "edge-kill", "camera-vanish"]


def close_all(closers):
    """Runs each clean-up, whatever the others did."""
    for close in closers:
        try:
            close()
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass


def write_json(path: Path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1))


def proc_sample(pid) -> dict:
    """RSS (MB), open files and threads of a running process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1), "fds": fds,
            "threads": int(fields["Threads"])}


def du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


def metric(server: Server, name: str) -> int:
    """A counter from the server's /metrics (-1 when it cannot be read)."""
    status, text = http("GET", server.url + "/metrics", token=server.admin, timeout=10)
    if status != 200:
        return -1
    for line in str(text).splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return -1


def soak(minutes: float, every_s: float, out_json: Path | None, markdown_file: Path | None):
    """4 simulated cameras and a pillar through an edge and a server for
    `minutes`; samples memory, files, threads and storage every `every_s`."""
    tmp = Path(tempfile.mkdtemp(prefix="safecity-soak-"))
    closers = []
    try:
        server, sim, edge = edge_setup(tmp, closers, cameras=4, seconds=int(minutes * 60) + 300)
        presses = Presses(edge, 60.0)
        presses.start()
        t0 = time.time()
        samples = []
        while True:
            t = time.time() - t0
            samples.append({"minute": round(t / 60, 1),
                            "edge": proc_sample(edge.proc.pid), "server": proc_sample(server.proc.pid),
                            "spool_kb": du(tmp / "spool") // 1024, "server_data_kb": du(tmp / "data") // 1024,
                            "events_ingested": metric(server, "safecity_events_ingested_total")})
            print(f"soak: {json.dumps(samples[-1])}", flush=True)
            if t >= minutes * 60:
                break
            time.sleep(min(every_s, max(1.0, minutes * 60 - t)))
        presses.stop.set()
        presses.join()
        wait_for("the edge's spool to drain", edge.drained, 120)
        stored = {e["id"].upper() for e in server.stored(kind="panic_alarm")}
        lost = [i for i in presses.acked if i.upper() not in stored]
        status = edge.status() or {}
        streams = status.get("streams", [])
        result = {"minutes": minutes, "samples": samples, "alarms_acknowledged": len(presses.acked),
                  "alarms_lost": len(lost), "frames_analysed": sum(st["frames_analysed"] for st in streams),
                  "streams_online_at_end": sum(1 for st in streams if st["online"]), "streams": len(streams),
                  "edge_restarts": 0 if edge.proc.poll() is None else 1}
    finally:
        close_all(closers)
    if out_json:
        write_json(out_json, result)
    lines = ["| minute | edge RSS MB | edge open files | edge threads | server RSS MB | server open files | spool kB | server data kB | events stored |",
             "|---|---|---|---|---|---|---|---|---|"]
    step = max(1, len(samples) // 12)
    picked = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    for smp in picked:
        e, sv = smp["edge"], smp["server"]
        lines.append(f"| {smp['minute']} | {e.get('rss_mb')} | {e.get('fds')} | {e.get('threads')} | {sv.get('rss_mb')} | "
                     f"{sv.get('fds')} | {smp['spool_kb']} | {smp['server_data_kb']} | {smp['events_ingested']} |")
    table = "\n".join(lines) + (f"\n\n{result['alarms_acknowledged']} alarms acknowledged, {result['alarms_lost']} lost; "
                                f"the edge analysed {result['frames_analysed']} frames, ran without a restart, and had "
                                f"{result['streams_online_at_end']} of {result['streams']} streams online at the end.\n"
                                if not result["edge_restarts"] else "\nthe edge died during the soak.\n")
    table += f"\nCommand: `make soak` (`scripts/faults.py --soak {minutes:g}`)\n"
    print(table)
    if markdown_file:
        replace_between(markdown_file, "soak", table)
    if result["alarms_lost"] or result["edge_restarts"] or result["streams_online_at_end"] < result["streams"]:
        sys.exit(1)


def fuzz(seconds: int, markdown_file: Path | None) -> bool:
    """Runs every fuzz target for `seconds`; its table into `markdown_file`.
    False when anything was found (kept under fuzz/regressions/)."""
    cmd = [str(FUZZ), "--seconds", str(seconds)]
    print(f"faults: fuzzing, {seconds} s per target ...", flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    print(out.stdout + out.stderr, flush=True)
    table = fuzz_table(out.stdout, f"target/release/safecity-fuzz --seconds {seconds}")
    if markdown_file:
        replace_between(markdown_file, "fuzz", table)
    return out.returncode == 0


def fuzz_table(output: str, command: str) -> str:
    """The table of a `safecity-fuzz` run from its output."""
    rows = ["| target | inputs | seconds | inputs/s | findings |", "|---|---|---|---|---|"]
    for line in output.splitlines():
        words = line.replace("(", " ").replace("/s)", " ").replace(",", " ").split()
        if len(words) >= 9 and words[0] == "fuzz" and words[1].endswith(":"):
            rows.append(f"| {words[1][:-1]} | {words[2]} | {words[5]} | {words[7]} | {words[8]} |")
    return "\n".join(rows) + f"\n\nCommand: `{command}`\n"


def replace_between(path: Path, name: str, body: str):
    begin, end = f"<!-- {name} begins -->", f"<!-- {name} ends -->"
    text = path.read_text()
    if begin not in text or end not in text:
        sys.exit(f"{path} lacks the markers {begin} and {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(f"{head}{begin}\nMeasured {stamp}.\n\n{body}{end}{tail}")


def markdown(rows, command) -> str:
    out = ["| fault | what was running | acknowledged | lost | duplicated | longest gap (s) | searches | recovered by itself | notes |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['fault']} | skipped: {r['skipped']} | | | | | | | |")
            continue
        gap = "-" if r["longest_gap_s"] is None else r["longest_gap_s"]
        out.append(f"| {r['fault']} | {r['running']} | {r['acknowledged']} | {r['lost']} | {r['duplicated']} | {gap} | "
                   f"{r['searches']} | {'yes' if r['recovered'] else 'no'} | {r['notes']} |")
    return "\n".join(out) + f"\n\nCommand: `{command}`\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short faults, the CI subset")
    ap.add_argument("--only", help="comma-separated scenario names: " + ", ".join(SCENARIOS))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path, help="write the table into this file between its fault-table markers")
    ap.add_argument("--merge", action="store_true",
                    help="with --only and --json: replace these scenarios' rows in the --json file of an earlier run")
    ap.add_argument("--soak", type=float, metavar="MINUTES",
                    help="instead of the faults: 4 cameras and a pillar for this long, sampled")
    ap.add_argument("--sample-every", type=float, default=60.0, help="soak sampling interval, seconds")
    ap.add_argument("--fuzz-seconds", type=int, help="seconds per fuzz target (default 60; none with --quick or --only)")
    args = ap.parse_args()
    for binary in (SERVER, EDGE, FUZZ):
        if not binary.exists():
            sys.exit(f"{binary} is missing: run `make build` first")
    if args.soak:
        soak(args.soak, args.sample_every, args.json, args.markdown)
        return
    names = args.only.split(",") if args.only else (QUICK if args.quick else list(SCENARIOS))
    if args.merge and not (args.only and args.json and args.json.exists()):
        sys.exit("--merge needs --only and the --json file of an earlier run")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    rows, bad = [], []
    for name in names:
        tmp = Path(tempfile.mkdtemp(prefix=f"safecity-faults-{name}-"))
        closers = []
        t0 = time.time()
        print(f"faults: {name} ...", flush=True)
        try:
            row = SCENARIOS[name](tmp, args.quick, closers)
        except Skip as e:
            if os.environ.get("CI"):
                bad.append(f"{name}: cannot run under CI: {e}")
            print(f"faults: {name} SKIPPED: {e}", flush=True)
            row = {"fault": name, "skipped": str(e)}
        except Exception as e:  # noqa: BLE001 - reported as the scenario's failure
            bad.append(f"{name}: {e}")
            print(f"faults: {name} FAILED: {e} (logs in {tmp})", flush=True)
            row = {"fault": name, "skipped": f"failed: {e}"}
        finally:
            close_all(closers)
        row["scenario"], row["seconds"] = name, round(time.time() - t0)
        rows.append(row)
        if "skipped" not in row:
            print(f"faults: {name}: {row['acknowledged']} acknowledged, {row['lost']} lost, "
                  f"{row['duplicated']} duplicated, longest gap {row['longest_gap_s']} s, "
                  f"searches {row['searches']}, recovered {row['recovered']} ({row['seconds']} s); {row['notes']}",
                  flush=True)
            if row["lost"] or row["duplicated"] or not row["recovered"]:
                bad.append(f"{name}: {row['lost']} lost, {row['duplicated']} duplicated, recovered {row['recovered']} (logs in {tmp})")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    command = "make faults-quick" if args.quick and not args.only else "scripts/faults.py " + " ".join(sys.argv[1:])
    if not args.quick and not args.only:
        command = "make faults"
    if args.merge:
        # Rows of an earlier run (its JSON), these scenarios' rows replaced.
        earlier = json.loads(args.json.read_text())
        fresh = {r["scenario"]: r for r in rows}
        rows = [fresh.pop(r["scenario"], r) for r in earlier] + list(fresh.values())
        command = f"make faults, then {command}"
    if args.json:
        write_json(args.json, rows)
    table = markdown(rows, command)
    print(table)
    if args.markdown:
        replace_between(args.markdown, "fault table", table)
    fuzz_seconds = args.fuzz_seconds if args.fuzz_seconds is not None else (0 if args.quick or args.only else 60)
    if fuzz_seconds and not fuzz(fuzz_seconds, args.markdown):
        bad.append("fuzzing found inputs that break a decoder (kept under fuzz/regressions/)")
    if bad:
        print("faults: FAILED\n  " + "\n  ".join(bad), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
