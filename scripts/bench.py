#!/usr/bin/env python3
"""`make bench`: safecity's throughput, capacity, memory and latency on this
machine, side by side with serial rates and a peer baseline, written to
BENCHMARKS.md (and every figure to target/bench/bench.json).

Edge (one 1080p25 H.264 clip from the simulator, the shipped models):
  a  decode only through GStreamer             target/release/edge-bench decode
  b  models only on frames decoded in advance  target/release/edge-bench infer
  c  safecity-edge run, the file read once as fast as it goes (realtime = false)
  d  the peer: benches/peer/peer.py (PyAV + onnxruntime, same models and steps)
  e  real-time streams that fit: K looping copies of the clip at 25 fps,
     detection at 5, 10 and 25 fps, K raised until frames are lost
  f  the edge's peak memory (VmHWM) with 1 and 4 streams
Latency: simulator -> edge -> server -> SSE, light and full load.
Server: scripts/bench-server.sh (10M events over 1M plates, PostgreSQL baseline).

Only the Python standard library; the peer runs in its own venv.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"
WORK = ROOT / "target" / "bench"
CLIP_S = 20  # length of the benchmark clip
REALTIME_S = 15  # how long each real-time trial (e) is watched, for us and the peer
SEED = 11
# `cpu`, or `cuda` for `--gpu` (the execution provider the edge is given).
PROVIDER = "cpu"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(cmd, env=None):
    """Runs cmd and returns the last JSON line it printed."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"{cmd[0]} printed no JSON: {out[-500:]}")
    return json.loads(lines[-1])


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def vm_hwm_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- machine


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    gst = subprocess.run(["gst-launch-1.0", "--version"], capture_output=True, text=True).stdout
    gst = re.search(r"GStreamer ([\d.]+)", gst)
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    ort = Path(os.environ.get("SAFECITY_ORT_LIB", "")).resolve().name
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "gstreamer": gst.group(1) if gst else "?",
        "onnxruntime": ort,
        "commit": rev,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---------------------------------------------------------------- the clip


def clips(count):
    """`count` different 1080p25 simulator clips (rendered once, cached)."""
    cache = WORK / "sim"
    found = sorted(cache.glob("cam*-*.mp4"))
    if len(found) < count:
        log(f"rendering {count} 1080p25 simulator clips of {CLIP_S} s (cached in {cache})")
        subprocess.run(
            [str(BIN / "safecity-edge"), "simulate", "--cameras", str(count), "--duration", "0.5",
             "--width", "1920", "--height", "1080", "--fps", "25", "--loop", str(CLIP_S),
             "--seed", str(SEED), "--rtsp-port", "0", "--cache-dir", str(cache),
             "--truth", str(WORK / "clip-truth.jsonl")],
            check=True, stdout=subprocess.DEVNULL)
        found = sorted(cache.glob("cam*-*.mp4"))
    return found[:count]


# ---------------------------------------------------------------- server and edge


class Server:
    """safecity-server on its embedded store in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="safecity-bench-server-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "bench-admin-" + os.urandom(8).hex()
        env = dict(os.environ, SAFECITY_ADMIN_TOKEN=self.token)
        self.log = open(Path(self.dir) / "server.log", "w")
        self.proc = subprocess.Popen(
            [str(BIN / "safecity-server"), "--data-dir", self.dir, "--listen", f"127.0.0.1:{self.port}"],
            env=env, stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("safecity-server did not start; see " + self.log.name)

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Edge:
    """safecity-edge run on the given streams, delivering to `server`."""

    def __init__(self, server, streams, fps, realtime=True, pillars=(), api_port=None):
        self.dir = Path(tempfile.mkdtemp(prefix="safecity-bench-edge-"))
        self.api = api_port or free_port()
        lines = [
            'edge_id = "edge-bench"',
            "[server]", f'url = "{server.url}"', f'token = "{server.token}"',
            "[spool]", f'dir = "{self.dir / "spool"}"',
            "[api]", f'listen = "127.0.0.1:{self.api}"',
            "[models]", f'provider = "{PROVIDER}"',
            f"workers = {1 if PROVIDER == 'cpu' else 2}", "threads = 2",
        ]
        for i, url in enumerate(streams):
            ident, url = url if isinstance(url, tuple) else (f"bench-cam-{i + 1}", url)
            lines += ["[[cameras]]", f'id = "{ident}"', f'url = "{url}"',
                      f"lat = 43.2{i:02d}", "lon = 76.9", f"fps = {fps}"]
            if not realtime:
                lines.append("realtime = false")
        for ident, url in pillars:
            lines += ["[[pillars]]", f'id = "{ident}"', f'url = "{url}"',
                      "lat = 43.25", "lon = 76.95", "fps = 5"]
        (self.dir / "edge.toml").write_text("\n".join(lines) + "\n")
        self.log = open(self.dir / "edge.log", "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(BIN / "safecity-edge"), "run", "--config", str(self.dir / "edge.toml")],
            stdout=self.log, stderr=self.log)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'safecity_edge_(\w+)(?:\{stream="([^"]+)"\})?\s+([-\d.e+]+)$', line)
            if m:
                out[(m.group(1), m.group(2))] = float(m.group(3))
        return out

    def wait_up(self):
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError("the edge stopped; see " + self.log.name)
            try:
                return self.metrics()
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the edge's API did not answer; see " + self.log.name)

    def total(self, m, name):
        return sum(v for (n, s), v in m.items() if n == name and s)

    def stop(self):
        hwm = vm_hwm_mb(self.proc.pid)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        return hwm


# ---------------------------------------------------------------- edge sections


def edge_throughput(server, clip, fps):
    """c: the clip read once, as fast as the edge goes, detection at `fps`."""
    edge = Edge(server, [clip], fps, realtime=False)
    edge.wait_up()
    first = last = None
    frames = 0
    while True:
        m = edge.metrics()
        decoded = edge.total(m, "frames_decoded_total")
        now = time.monotonic()
        if decoded > 0 and first is None:
            first = (now, decoded)
        if decoded > frames:
            frames, last = decoded, now
        online = edge.total(m, "stream_online")
        if first and online == 0 and now - last > 1.0:
            break
        if now - edge.started > 300:
            raise RuntimeError("the edge took over 5 minutes on one clip")
        time.sleep(0.1)
    analysed = edge.total(m, "frames_analysed_total")
    hwm = edge.stop()
    seconds = last - first[0]
    return {"frames": frames, "analysed": analysed, "seconds": seconds,
            "fps": (frames - first[1]) / seconds, "peak_mb": hwm}


def edge_realtime(server, clip_list, k, fps, seconds=REALTIME_S, warmup=4):
    """e: k real-time streams at detection `fps`; did every frame get through?"""
    streams = [str(clip_list[i % len(clip_list)]) for i in range(k)]
    edge = Edge(server, streams, fps, realtime=True)
    edge.wait_up()
    time.sleep(warmup)
    m0, t0 = edge.metrics(), time.monotonic()
    time.sleep(seconds)
    m1, t1 = edge.metrics(), time.monotonic()
    hwm = edge.stop()
    dt = t1 - t0
    per = {}
    ok = True
    for i in range(k):
        s = f"bench-cam-{i + 1}"
        d = {n: m1.get((n, s), 0) - m0.get((n, s), 0)
             for n in ("frames_decoded_total", "frames_sampled_total", "frames_analysed_total",
                       "frames_dropped_total")}
        decoded_fps = d["frames_decoded_total"] / dt
        analysed_fps = d["frames_analysed_total"] / dt
        lost = d["frames_dropped_total"]
        keeps = decoded_fps >= 25 * 0.95 and analysed_fps >= fps * 0.95 and lost <= 0.01 * max(1, d["frames_sampled_total"])
        ok &= keeps
        per[s] = {"decoded_fps": round(decoded_fps, 2), "analysed_fps": round(analysed_fps, 2), "lost": lost}
    return {"streams": k, "fps": fps, "ok": ok, "peak_mb": hwm, "per_stream": per}


def search(trial, guess, limit=256):
    """The largest k for which trial(k) holds, starting from `guess`: steps
    of one near the guess, doubling away from it, then bisection."""
    tried = {}

    def ok(k):
        if k not in tried:
            tried[k] = trial(k)
        return tried[k]

    k = max(1, guess)
    if ok(k):
        lo, step = k, 1
        while lo + step <= limit and ok(lo + step):
            lo, step = lo + step, step * 2
        hi = min(lo + step, limit + 1)
    else:
        hi, step = k, 1
        while hi - step >= 1 and not ok(hi - step):
            hi, step = hi - step, step * 2
        lo = max(0, hi - step)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def capacity(run, label, guess, results):
    """The largest k for which `run(k)` reports `ok`, searching from `guess`;
    every run's figures go to `results`."""
    def trial(k):
        r = run(k)
        results.append(r)
        log(f"  {label(k)}: {'kept up' if r['ok'] else 'fell behind'}")
        return r["ok"]
    return search(trial, guess)


def peer_python():
    out = subprocess.run(["bash", str(ROOT / "scripts" / "peer-venv.sh")], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()
    return out[-1]


def peer_cmd(py, clip, every, *extra):
    """peer.py on `clip` with the shipped models, detection on every `every`-th frame."""
    return [py, str(ROOT / "benches" / "peer" / "peer.py"), str(clip),
            "--detector", str(ROOT / "models" / "safecity-detector.onnx"),
            "--plate", str(ROOT / "models" / "safecity-plate.onnx"),
            "--every", str(every), "--json", *extra]


def peer_run(py, clip, every):
    return run_json(peer_cmd(py, clip, every))


def peer_realtime(py, clip_list, k, every, seconds=REALTIME_S, warmup=4):
    """The peer's k real-time streams, judged as edge_realtime judges ours:
    after the same warm-up, over the same window, every process decodes
    >= 95% of 25 fps and analyses >= 95% of its detection rate (the peer
    drops no frame: it falls behind instead)."""
    procs = []
    for i in range(k):
        procs.append(subprocess.Popen(
            peer_cmd(py, clip_list[i % len(clip_list)], every,
                     "--realtime", "25", "--warmup", str(warmup), "--frames", str(25 * (seconds + warmup))),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    results = []
    for p in procs:
        out, _ = p.communicate()
        lines = [l for l in out.splitlines() if l.startswith("{")]
        results.append(json.loads(lines[-1]) if lines else {})
    ok = all(r.get("window_decode_fps", 0) >= 25 * 0.95 and r.get("window_detect_fps", 0) >= 25 / every * 0.95
             for r in results)
    return {"processes": k, "ok": ok, "per_process": results}


# ---------------------------------------------------------------- latency


class AlertListener(threading.Thread):
    """Reads the server's SSE stream and notes when each alert arrives."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.alerts = []
        self.ready = threading.Event()

    def run(self):
        req = urllib.request.Request(self.server.url + "/api/v1/alerts/stream",
                                     headers={"Authorization": f"Bearer {self.server.token}"})
        with urllib.request.urlopen(req, timeout=600) as r:
            self.ready.set()
            data = []
            for raw in r:
                line = raw.decode().rstrip("\n")
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    at = time.time()
                    try:
                        self.alerts.append((at, json.loads("\n".join(data))))
                    except ValueError:
                        pass
                    data = []


def parse_ts(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def latency(server, cameras, pillars, width, height, fps, seconds):
    """Capture time -> alert stored (its `created`) and -> alert on the SSE stream."""
    rtsp = free_port()
    sim_dir = Path(tempfile.mkdtemp(prefix="safecity-bench-sim-"))
    edge_api = free_port()
    sim = subprocess.Popen(
        [str(BIN / "safecity-edge"), "simulate", "--cameras", str(cameras), "--pillars", str(pillars),
         "--width", str(width), "--height", str(height), "--loop", str(CLIP_S), "--seed", str(SEED),
         "--rtsp-port", str(rtsp), "--cache-dir", str(WORK / "sim-live"), "--truth", str(sim_dir / "truth.jsonl"),
         "--alarm-url", f"http://127.0.0.1:{edge_api}/api/v1/alarm"],
        stdout=open(sim_dir / "sim.out", "w"), stderr=open(sim_dir / "sim.log", "w"))
    try:
        for _ in range(1200):
            if "ground truth:" in (sim_dir / "sim.out").read_text():
                break
            if sim.poll() is not None:
                raise RuntimeError(f"the simulator stopped; see {sim_dir}/sim.log")
            time.sleep(0.5)
        urls = re.findall(r"^stream (\S+) (camera|pillar) (\S+)", (sim_dir / "sim.out").read_text(), re.M)
        # Every plate the clips show is hotlisted (fuzzy, so near misses
        # count too), to make each read an alert.
        plates = {p["plate"] for f in (WORK / "sim-live").glob("*.passes.json")
                  for p in json.loads(f.read_text())}
        for plate in sorted(plates):
            server.call("POST", "/api/v1/watchlist", {"pattern": plate, "mode": "fuzzy", "max_distance": 2,
                                                      "reason": "benchmark", "priority": "low"})
        listener = AlertListener(server)
        listener.start()
        listener.ready.wait(10)
        edge = Edge(server, [(i, u) for i, k, u in urls if k == "camera"], fps,
                    pillars=[(i, u) for i, k, u in urls if k == "pillar"], api_port=edge_api)
        edge.wait_up()
        # Besides the simulator's own presses (one per loop), a press every
        # 2 s on each pillar, so that the alarm figures rest on dozens.
        stop_pressing = threading.Event()

        def press():
            while not stop_pressing.wait(2.0):
                for pillar, kind, _ in urls:
                    if kind == "pillar":
                        req = urllib.request.Request(
                            f"http://127.0.0.1:{edge_api}/api/v1/alarm",
                            data=json.dumps({"pillar_id": pillar, "source": "benchmark"}).encode(),
                            headers={"Content-Type": "application/json"}, method="POST")
                        try:
                            urllib.request.urlopen(req, timeout=5).read()
                        except OSError:
                            pass

        presser = threading.Thread(target=press, daemon=True)
        presser.start()
        time.sleep(seconds)
        stop_pressing.set()
        presser.join()
        m = edge.metrics()
        hwm = edge.stop()
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            sim.kill()
        shutil.rmtree(sim_dir, ignore_errors=True)
    out = {"cameras": cameras, "pillars": pillars, "resolution": f"{width}x{height}", "fps": fps,
           "seconds": seconds, "peak_mb": hwm, "frames_dropped": edge.total(m, "frames_dropped_total")}
    for kind, label in (("panic_alarm", "alarm"), ("plate_read", "read")):
        got = [(at, a) for at, a in listener.alerts if a.get("event_kind") == kind]
        to_alert = [(at - parse_ts(a["ts"])) * 1e3 for at, a in got]
        to_stored = [(parse_ts(a["created"]) - parse_ts(a["ts"])) * 1e3 for _, a in got]
        out[label] = {"count": len(got),
                      "stored_p50_ms": pct(to_stored, 50), "stored_p99_ms": pct(to_stored, 99),
                      "stored_max_ms": max(to_stored, default=None),
                      "alert_p50_ms": pct(to_alert, 50), "alert_p99_ms": pct(to_alert, 99),
                      "alert_max_ms": max(to_alert, default=None)}
    return out


# ---------------------------------------------------------------- report


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def report(r):
    m = r["machine"]
    e = r["edge"]
    lines = [
        "# safecity benchmarks",
        "",
        f"Written by `make bench` (commit {m['commit']}). Each section says when it was measured; ratios",
        "compare figures measured side by side in one run. Raw figures: `target/bench/bench.json` and",
        "`target/bench/server.json`.",
        "",
        f"**Machine:** {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']};",
        f"GStreamer {m['gstreamer']}, ONNX Runtime `{m['onnxruntime']}` (CPU).",
        "",
    ]
    if "headline" in r:
        h = r["headline"]
        lines += [
            "## Headline",
            "",
            "| real-time 1080p25 streams on this machine, detection at 5 fps with plate reading | streams |",
            "|---|---|",
            f"| safecity (one `safecity-edge run`) | **{h['safecity']}** |",
            f"| peer (PyAV + onnxruntime, one process per stream) | {h['peer']} |",
            "",
        ]
    if e:
        a, b = e["decode"], e["infer"]
        lines += [
            "## 1. Edge throughput on CPU",
            "",
            f"Measured {r.get('measured', {}).get('edge', m['date'])}.",
            "",
            f"One {e['clip_frames']}-frame 1080p25 H.264 clip from the simulator (`{e['clip']}`), the shipped",
            "models (detector 640x384, plate reader, colour), 2 threads per session.",
            "",
            "| | what | frames/s |",
            "|---|---|---|",
            f"| a | decode only, GStreamer `decodebin` ({a['decoder']}) | {fmt(a['fps'])} |",
            f"| b | detector + plate reader + colour through ort, frames decoded in advance (batch {b['batch']}; {fmt(b['plates_per_frame'], 2)} plates/frame) | {fmt(b['fps'])} |",
        ]
        for every in (1, 5):
            c, d = e["e2e"][str(every)], e["peer"][str(every)]
            lines.append(f"| c | safecity-edge end to end, detection on every {'' if every == 1 else str(every) + 'th '}frame | {fmt(c['fps'])} |")
            lines.append(f"| d | peer, detection on every {'' if every == 1 else str(every) + 'th '}frame | {fmt(d['fps'])} |")
        rd = b.get("reader")
        if rd:
            lines += [
                "",
                f"The plate reader alone, on b's {rd['plates']} plates in batches of 16: **{fmt(rd['ms_per_plate'], 2)} ms per plate**, "
                f"{fmt(100 * rd['second_stage_share'])} % of them read again by the cascade's strong reader "
                "(the fast reader hands on every plate it does not read as a Kazakhstan plate with enough confidence).",
            ]
        lines += [
            "",
            "On a CPU decode and inference share the cores. Done one after the other, a and b give",
            "`1 / (1/a + 1/(n*b))` video frames a second for detection on every n-th frame: the **serial",
            "rate**. It is not a ceiling: the edge decodes the next frames while a batch is analysed, so it",
            "may beat it; a pipeline that fell well under it would be wasting the cores.",
            "",
            "| detection on | serial rate | c | c / serial (target >= 0.9) | d | c / d (target >= 1.0) |",
            "|---|---|---|---|---|---|",
        ]
        for every in (1, 5):
            c, d = e["e2e"][str(every)], e["peer"][str(every)]
            serial = 1 / (1 / a["fps"] + 1 / (every * b["fps"]))
            lines.append(f"| every {'' if every == 1 else str(every) + 'th '}frame | {fmt(serial)} | {fmt(c['fps'])} | "
                         f"{fmt(c['fps'] / serial, 2)} | {fmt(d['fps'])} | {fmt(c['fps'] / d['fps'], 2)} |")
        lines += [
            "",
            "Commands (a: best of 3, b: best of 2): `target/release/edge-bench decode CLIP`,",
            "`target/release/edge-bench infer CLIP --frames 200`,",
            "`safecity-edge run` with the clip as a camera with `realtime = false` and `fps = 25` or `5`,",
            "`.deps/peer-venv/bin/python benches/peer/peer.py CLIP --every N --json`.",
            "",
            "### Real-time streams that fit (e)",
            "",
            f"Copies of the clip played at 25 fps, looping, as cameras; a count fits when, over {REALTIME_S} s after a",
            "4 s warm-up, every stream decodes >= 95% of 25 fps, analyses >= 95% of the detection rate and drops",
            "<= 1% of frames. The peer runs one process per stream, judged by the same window and rates (it drops",
            "nothing; it falls behind instead). Both counts come from the same search: one step from a guess,",
            "doubling away from it, then bisection, each count tried once.",
            "",
            "| detection rate per camera | safecity streams | peer streams |",
            "|---|---|---|",
        ]
        for fps, k in e["capacity"].items():
            peer = e.get("peer_capacity") if str(fps) == "5" else None
            lines.append(f"| {fps} fps | {k} | {'-' if peer is None else peer} |")
        lines += [
            "",
            "### Peak memory (f)",
            "",
            "| streams (1080p25, detection 5 fps) | edge peak RSS (VmHWM) | per stream (target <= 150 MB) |",
            "|---|---|---|",
        ]
        for n, mb in e["memory"].items():
            per = None if mb is None else mb / int(n)
            lines.append(f"| {n} | {fmt(mb)} MB | {fmt(per)} MB |")
        lines.append("")
    if r.get("latency"):
        lines += [
            "## 2. Latency",
            "",
            f"Measured {r.get('measured', {}).get('latency', m['date'])}.",
            "",
            "From the frame's capture time (the simulator's clock, carried in RTCP sender reports) to the",
            "alert row stored at the server (`created`) and to the alert arriving on",
            "`/api/v1/alerts/stream`. Every plate in the clips is hotlisted (fuzzy, distance 2), so reads are",
            "alerts; pillar presses (the simulator's, and one every 2 s through the edge's API) are alerts of",
            "their own. With fewer than 100 of an event the tail is shown as the maximum, not a percentile.",
            "A plate read is sent once per vehicle pass, when its track ends, so its",
            "figures also hold the rest of the vehicle's time in view after the best frame and the track's",
            "close timeout; the alarm figures are the pipeline alone.",
            "",
            "| load | event | n | to stored p50 / max ms | to SSE alert p50 / max ms |",
            "|---|---|---|---|---|",
        ]
        for name, l in r["latency"].items():
            for ev in ("alarm", "read"):
                x = l[ev]
                lines.append(f"| {name}: {l['cameras']} cameras + {l['pillars']} pillar, {l['resolution']}, detection {l['fps']} fps | "
                             f"{ev} | {x['count']} | {fmt(x['stored_p50_ms'], 0)} / {fmt(x.get('stored_max_ms', x['stored_p99_ms']), 0)} | "
                             f"{fmt(x['alert_p50_ms'], 0)} / {fmt(x.get('alert_max_ms', x['alert_p99_ms']), 0)} |")
        lines.append("")
    if r.get("server"):
        lines += ["## 3. Server", "", server_markdown(r["server"], r.get("measured", {}).get("server", m["date"])), ""]
    if r.get("micro"):
        lines += ["## 5. Micro-benchmarks", "",
                  f"Measured {r.get('measured', {}).get('micro', m['date'])}.", "", r["micro"].rstrip(), ""]
    lines += ["## 4. GPU hosts", "",
              "See the GPU section of the README for the `cuda`, `tensorrt` and `nvdec` features and",
              "`make bench-gpu`. " + r.get("gpu_note", "No GPU host was used for this run."), ""]
    return "\n".join(lines)


class GpuMonitor(threading.Thread):
    """`nvidia-smi dmon -s u` once a second: SM, memory, encoder and decoder use (%)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.rows = []
        self.proc = subprocess.Popen(["nvidia-smi", "dmon", "-s", "u", "-d", "1"],
                                     stdout=subprocess.PIPE, text=True)

    def run(self):
        for line in self.proc.stdout:
            parts = line.split()
            if parts and parts[0].isdigit() and len(parts) >= 5:
                self.rows.append([float(x) if x.replace(".", "").isdigit() else 0.0 for x in parts[1:5]])

    def stop(self):
        self.proc.terminate()
        if not self.rows:
            return {}
        cols = list(zip(*self.rows))
        return {name: round(sum(c) / len(c), 1) for name, c in zip(("sm", "mem", "enc", "dec"), cols)}


def gpu_main(args):
    """make bench-gpu: streams per GPU at 1080p25 with detection at --fps."""
    global PROVIDER
    PROVIDER = "cuda"
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, check=True).stdout.strip()
    clip_list = clips(4)
    decode = run_json([str(BIN / "edge-bench"), "decode", str(clip_list[0])])
    infer = run_json([str(BIN / "edge-bench"), "infer", str(clip_list[0]), "--frames", "400",
                      "--batch", "16", "--provider", "cuda"])
    log(f"decode {decode['fps']:.0f} fps ({decode['decoder']}), inference {infer['fps']:.0f} fps")
    runs = []
    use = {}
    server = Server()
    try:
        def trial(k):
            mon = GpuMonitor()
            mon.start()
            r = edge_realtime(server, clip_list, k, args.fps)
            r["gpu_use"] = mon.stop()
            runs.append(r)
            use[k] = r["gpu_use"]
            log(f"  {k} streams: {'kept up' if r['ok'] else 'fell behind'}, GPU use {r['gpu_use']}")
            return r["ok"]
        guess = int(min(decode["fps"], infer["fps"] / (args.fps / 25)) / 25)
        streams = search(trial, guess)
    finally:
        server.stop()
    result = {"machine": machine(), "gpu": gpu, "fps": args.fps, "decode": decode, "infer": infer,
              "streams": streams, "gpu_use": use.get(streams, {}), "runs": runs}
    Path(args.json).write_text(json.dumps(result, indent=2))
    table = "\n".join([
        f"GPU host: {gpu}; {result['machine']['cpu']}, {result['machine']['cores']} cores",
        "",
        f"| 1080p25 streams per GPU, detection at {args.fps} fps | decoder | decode fps (one stream, a) | inference fps (b) | GPU use at that load (SM / decoder %) |",
        "|---|---|---|---|---|",
        f"| **{streams}** | {decode['decoder']} | {decode['fps']:.0f} | {infer['fps']:.0f} | "
        f"{result['gpu_use'].get('sm', 'n/a')} / {result['gpu_use'].get('dec', 'n/a')} |",
        "",
    ])
    Path(args.out).write_text(table)
    print(table)


def server_markdown(sj, measured):
    """The server section from `server-bench`'s JSON (scripts/bench-server.sh)."""
    d = sj["data"]
    mb = lambda b: b / 1e6  # noqa: E731
    out = [
        f"Measured {measured}.",
        "",
        f"`bash scripts/bench-server.sh` ({sj.get('wall_s', 0) / 60:.1f} minutes): {d['events']:,} generated plate reads",
        f"over {d['plates']:,} distinct plates, {d['cameras']} cameras and {d['days']} days, ingested in batches of",
        f"{sj['settings']['batch']:,} through the server's `Store` (the HTTP handler's path without HTTP), then searched",
        "through the same code as `GET /api/v1/search` (plate index, then the (plate, time) index), one query at a time.",
        "In SQLite the (plate, time) index is cut into sorted parts that ingest appends to and merges, and the camera",
        "index takes events in by chunks, so that a batch writes few pages (`server/src/store/sqlite/ingest.rs`).",
        "The baseline is the plain way in PostgreSQL, in the same run: one table with a (plate, ts) btree and a",
        "pg_trgm GIN index, `LIKE` for wildcards, the trigram operator `%` with `levenshtein() <= 2`",
        "(fuzzystrmatch) for fuzzy; its fuzzy row uses the trigram index, a plain `levenshtein()` scan is",
        "in the JSON (`fuzzy_scan`).",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for t in sj["targets"]:
        v = t["value"]
        out.append(f"| {t['what']} {t['target']} | {v:,.1f} | {'yes' if t['met'] else '**no**'} |")
    out += ["", "| store | events | exact p50 / p99 ms | wildcard p50 / p99 ms | fuzzy (<= 2) p50 / p99 ms |",
            "|---|---|---|---|---|"]
    for name, key in (("safecity, SQLite", "sqlite"), ("safecity, PostgreSQL", "postgres_store"),
                      ("plain PostgreSQL baseline", "baseline")):
        for cp in (sj.get(key) or {}).get("checkpoints", []):
            cells = []
            for kind in ("exact", "wildcard", "fuzzy"):
                lat = cp["search"].get(kind, {}).get("latency")
                cells.append("n/a" if not lat else f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}")
            out.append(f"| {name} | {cp['events']:,} | " + " | ".join(cells) + " |")
    out += ["", "| store | ingest events/s | disk per million events | memory |", "|---|---|---|---|"]
    sq = sj["sqlite"]
    last = sq["checkpoints"][-1]
    out.append(f"| safecity, SQLite (WAL, synchronous=FULL) | {sq['events_per_s']:,.0f} | "
               f"{mb(last['disk']['bytes_per_million_events']):,.0f} MB | "
               f"{mb(last['memory']['rss_after_open_bytes_per_million_events']):,.1f} MB RSS per million events after open (plate index) |")
    for c in sj.get("clients") or []:
        who = "one client" if c["clients"] == 1 else f"{c['clients']} clients at once (group commit)"
        out.append(f"| safecity, SQLite, {who}: first {c['events']:,} events into a fresh store, wall clock | "
                   f"{c['events_per_s']:,.0f} | | |")
    pg = sj.get("postgres_store")
    if pg:
        out.append(f"| safecity, PostgreSQL (first {pg['events']:,} events) | {pg['events_per_s']:,.0f} | "
                   f"{mb(pg['checkpoints'][-1]['disk']['bytes_per_million_events']):,.0f} MB | |")
    if sj.get("http"):
        h = sj["http"]
        out.append(f"| safecity over HTTP (gzip JSON, {h['ingest_events']:,} events, batches of 1,000) | "
                   f"{h['events_per_s']:,.0f} | | |")
    base = sj.get("baseline")
    if base:
        loads = base.get("loads", [])
        rate = loads[-1]["copy_events_per_s"] if loads else None
        out.append(f"| plain PostgreSQL (COPY, indexes built after) | {rate:,.0f} | "
                   f"{mb(base['checkpoints'][-1]['disk']['bytes_per_million_events']):,.0f} MB | |")
    notes = sj.get("notes") or []
    if notes:
        out += [""] + [f"- {n}" for n in notes]
    pgset = sj["machine"].get("postgres_settings")
    if pgset:
        out += ["", "PostgreSQL " + sj["machine"].get("postgres_version", "") + " settings: " +
                ", ".join(f"`{k}={v}`" for k, v in pgset.items()) + "."]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--json", default=str(WORK / "bench.json"))
    ap.add_argument("--skip", action="append", default=[],
                    help="edge, latency, server or micro: leave a section out")
    ap.add_argument("--reuse", action="store_true",
                    help="start from target/bench/bench.json and redo only the sections not skipped")
    ap.add_argument("--splice", action="store_true",
                    help="replace only the sections measured now in the existing BENCHMARKS.md "
                         "(e.g. --splice --skip edge --skip latency --skip micro after a server change)")
    ap.add_argument("--gpu", action="store_true",
                    help="streams per GPU only (make bench-gpu; CUDA build of the edge)")
    ap.add_argument("--fps", type=float, default=5, help="detection rate per camera for --gpu")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.gpu:
        return gpu_main(args)
    started = time.monotonic()
    result = {"machine": machine(), "edge": None}
    if (args.reuse or args.splice) and Path(args.json).exists():
        result = json.loads(Path(args.json).read_text())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.reuse or args.splice:
        # Sections measured now may be at another commit than the rest.
        stamp += f" (commit {machine()['commit']})"
    result.setdefault("measured", {})

    if "edge" not in args.skip:
        clip_list = clips(4)
        clip = clip_list[0]
        log("a: decode only")
        decode = max((run_json([str(BIN / "edge-bench"), "decode", str(clip)]) for _ in range(3)),
                     key=lambda x: x["fps"])
        log(f"   {decode['fps']:.1f} frames/s")
        log("b: inference only")
        infer = max((run_json([str(BIN / "edge-bench"), "infer", str(clip), "--frames", "200"])
                     for _ in range(2)), key=lambda x: x["fps"])
        log(f"   {infer['fps']:.1f} frames/s")
        server = Server()
        try:
            e2e = {}
            for every in (1, 5):
                log(f"c: safecity-edge end to end, detection on every {every}. frame")
                e2e[str(every)] = edge_throughput(server, clip, 25 / every)
                log(f"   {e2e[str(every)]['fps']:.1f} frames/s")
            log("d: the peer")
            py = peer_python()
            peer = {}
            for every in (1, 5):
                peer[str(every)] = peer_run(py, clip, every)
                log(f"   every {every}: {peer[str(every)]['fps']:.1f} frames/s")
            log("e: real-time streams")
            runs = []
            cap = {}
            for fps in (5, 10, 25):
                per_stream = 25 / decode["fps"] + fps / infer["fps"]
                cap[fps] = capacity(lambda k, fps=fps: edge_realtime(server, clip_list, k, fps),
                                    lambda k, fps=fps: f"{k} streams at {fps} fps detection",
                                    int(1 / per_stream), runs)
            log("   the peer at 5 fps detection")
            peer_runs = []
            peer_cap = capacity(lambda k: peer_realtime(py, clip_list, k, 5),
                                lambda k: f"peer, {k} processes",
                                int(peer["5"]["fps"] / 25), peer_runs)
            log("f: memory with 1 and 4 streams")
            memory = {}
            for n in (1, 4):
                r = next((x for x in runs if x["streams"] == n and x["fps"] == 5), None) or edge_realtime(server, clip_list, n, 5)
                memory[str(n)] = r["peak_mb"]
        finally:
            server.stop()
        frames = decode["frames"]
        result["edge"] = {"clip": str(clip.relative_to(ROOT)), "clip_frames": frames, "decode": decode,
                          "infer": infer, "e2e": e2e, "peer": peer, "capacity": cap,
                          "capacity_runs": runs, "peer_capacity": peer_cap, "peer_runs": peer_runs,
                          "memory": memory}
        result["headline"] = {"safecity": cap[5], "peer": peer_cap}
        result["measured"]["edge"] = stamp

    if "latency" not in args.skip:
        result["latency"] = {}
        for name, cams, res, fps in (("light", 1, (1920, 1080), 10), ("full", 4, (1920, 1080), 5)):
            log(f"latency, {name} load")
            server = Server()
            try:
                result["latency"][name] = latency(server, cams, 1, res[0], res[1], fps, 60)
            finally:
                server.stop()
        result["measured"]["latency"] = stamp

    if "server" not in args.skip:
        log("server: scripts/bench-server.sh")
        subprocess.run(["bash", str(ROOT / "scripts" / "bench-server.sh")], check=True)
        result["measured"]["server"] = stamp
    if (WORK / "server.json").exists():
        result["server"] = json.loads((WORK / "server.json").read_text())

    if "micro" not in args.skip:
        log("micro-benchmarks (criterion)")
        out = subprocess.run(["cargo", "bench", "-p", "safecity-benches", "--bench", "micro", "--locked"],
                             check=True, capture_output=True, text=True).stdout
        result["micro"] = criterion_table(out)
        result["measured"]["micro"] = stamp

    result["seconds"] = result.get("seconds", 0) * (args.reuse or args.splice) + time.monotonic() - started
    Path(args.json).write_text(json.dumps(result, indent=2))
    text = report(result)
    if args.splice and Path(args.out).exists():
        now = [h for k, hs in SECTIONS.items() if k not in args.skip for h in hs]
        text = splice(Path(args.out).read_text(), text, now)
    Path(args.out).write_text(text)
    log(f"wrote {args.out} in {result['seconds'] / 60:.1f} minutes")


# The headings (their starts) of each part of the report.
SECTIONS = {"edge": ["## Headline", "## 1."], "latency": ["## 2."], "server": ["## 3."],
            "micro": ["## 5."]}


def splice(old, new, headings):
    """`old` with its sections that start with one of `headings` replaced by
    those of `new`; everything else, the header included, stays."""
    def blocks(text):
        out = [[]]
        for line in text.splitlines(keepends=True):
            if line.startswith("## "):
                out.append([])
            out[-1].append(line)
        return ["".join(b) for b in out]

    fresh = {h: b for b in blocks(new) for h in headings if b.startswith(h)}
    return "".join(next((fresh[h] for h in headings if b.startswith(h) and h in fresh), b)
                   for b in blocks(old))


def criterion_table(out):
    """Criterion's `name  time: [lo mid hi]` / `thrpt: [lo mid hi]` lines as a table."""
    rows = ["| benchmark | time (median) | throughput (median) |", "|---|---|---|"]
    name = time_mid = None
    triple = r"\[(\S+\s+\S+)\s+(\S+\s+\S+)\s+(\S+\s+\S+)\]"
    for line in out.splitlines():
        if line and not line[0].isspace() and not line.startswith(("Benchmarking", "Found", "Gnuplot", "Warning", "running", "test ")):
            name = line.split()[0]
        t = re.search(r"time:\s+" + triple, line)
        if t:
            time_mid = t.group(2)
        th = re.search(r"thrpt:\s+" + triple, line)
        if th and name and time_mid:
            rows.append(f"| {name} | {' '.join(time_mid.split())} | {' '.join(th.group(2).split())} |")
    return "Command: `cargo bench -p safecity-benches --bench micro`.\n\n" + "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
