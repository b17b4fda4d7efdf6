#!/usr/bin/env python3
"""`make eval-edge`: the edge daemon measured end to end against the
simulator's ground truth.

The simulator serves N cameras and a pillar over RTSP with known vehicle
passes; `safecity-edge run` analyses them and forwards its events to a
receiver in this script that stands in for the server (it stores each event
id once, as the server does). Mid-run the edge is killed with SIGKILL and
restarted, and later the receiver goes away for a while. At the end every
readable pass in the ground truth is looked up among the received events:
right when exactly one event spells its plate at its time; duplicated when
more than one does, or when beside its right read another event (a misread
or a plate-less vehicle event) came from its camera while no other vehicle
was in view there (one pass split in two).

The default seed, 4100, is one the pass logic was never tuned on (that was
4000).

Python standard library only. Usage:

    scripts/eval_edge.py [--cameras 4] [--width 1280 --height 720 --fps 25]
                         [--seconds 180] [--kill-at 60] [--outage-at 100]
                         [--outage 30] [--json target/eval/edge.json]
"""

import argparse
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EDGE = ROOT / "target" / "release" / "safecity-edge"


def parse_ts(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """POST /api/v1/events: stores each id once; up/down on demand."""

    def __init__(self, port: int):
        self.port = port
        self.events = {}  # id -> (event, first arrival unix s)
        self.deliveries = 0  # events received, resends included
        self.clips = {}  # event id -> (bytes, first arrival unix s)
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def up(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = self.path.strip("/").split("/")
                ok = len(parts) == 5 and parts[:3] == ["api", "v1", "events"] and parts[4] == "clip"
                if ok:
                    with receiver.lock:
                        receiver.clips.setdefault(parts[3], (body, time.time()))
                self.send_response(201 if ok else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                now = time.time()
                batch = json.loads(body)
                with receiver.lock:
                    receiver.deliveries += len(batch)
                    for e in batch:
                        receiver.events.setdefault(e["id"], (e, now))
                reply = json.dumps({"accepted": len(batch)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self):
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self):
        with self.lock:
            return dict(self.events)


def start_sim(args, tmp: Path):
    cmd = [
        str(EDGE), "simulate", "--cameras", str(args.cameras), "--pillars", "1",
        "--rtsp-port", "0", "--width", str(args.width), "--height", str(args.height),
        "--fps", str(args.fps), "--loop", str(args.loop), "--seed", str(args.seed),
        "--truth", str(tmp / "truth.jsonl"), "--duration", str(args.seconds + 600),
    ]
    sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    urls = {}
    while len(urls) < args.cameras + 1:
        line = sim.stdout.readline()
        if not line:
            sys.exit("the simulator stopped before serving its streams")
        words = line.split()
        if words and words[0] == "stream":
            urls[words[1]] = words[3]
    threading.Thread(target=lambda: [None for _ in sim.stdout], daemon=True).start()
    return sim, urls


def write_config(path: Path, args, server_port, api_port, urls, spool):
    lines = [
        'edge_id = "edge-eval"',
        "[server]",
        f'url = "http://127.0.0.1:{server_port}"',
        'token = "eval"',
        "[spool]",
        f'dir = "{spool}"',
        "[api]",
        f'listen = "127.0.0.1:{api_port}"',
        "[models]",
        f"threads = {args.threads}",
        f"workers = {args.workers}",
    ]
    if args.plate_views:
        lines.append(f"plate_views = {args.plate_views}")
    for i in range(1, args.cameras + 1):
        lines += ["[[cameras]]", f'id = "cam{i}"', f'url = "{urls[f"cam{i}"]}"',
                  f"lat = {43.23 + i * 0.001}", "lon = 76.94", f"fps = {args.detect_fps}"]
    lines += ["[[pillars]]", 'id = "pillar1"', f'url = "{urls["pillar1"]}"',
              "lat = 43.2", "lon = 76.9", "fps = 2"]
    path.write_text("\n".join(lines) + "\n")


def start_edge(config: Path, log):
    return subprocess.Popen([str(EDGE), "run", "--config", str(config)],
                            stdout=log, stderr=log)


def press(api_port: int) -> tuple[str, float]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/api/v1/alarm",
        data=json.dumps({"pillar_id": "pillar1", "source": "button"}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    t = time.time()
    for _ in range(100):
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())["id"], t
        except OSError:
            time.sleep(0.2)
            t = time.time()
    raise SystemExit("the edge's local API never answered")


def edge_metrics(api_port: int) -> dict:
    """Frame counters of the running (restarted) edge, summed over cameras."""
    totals = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError as e:
        return {"error": str(e)}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        base = name.split("{")[0].removeprefix("safecity_edge_")
        if base in ("frames_decoded_total", "frames_sampled_total", "frames_dropped_total",
                    "frames_analysed_total", "inference_batches_total", "inference_frames_total"):
            totals[base] = totals.get(base, 0) + float(value)
    return totals


def blackouts(events: dict, killed_at):
    """Per camera, when the killed edge could see nothing: from the kill to
    the restarted edge's first `online` status of that camera."""
    if killed_at is None:
        return {}
    out = {}
    for e, _ in events.values():
        if e["kind"] == "camera_status" and e.get("status", {}).get("state") == "online":
            t = parse_ts(e["ts"])
            if t > killed_at:
                cam = e["camera_id"]
                out[cam] = (killed_at, min(t, out.get(cam, (0, t))[1]))
    return out


def score(truth_path: Path, events: dict, start: float, end: float, tolerance: float, killed_at=None):
    dark = blackouts(events, killed_at)
    passes, every_pass, unseen = [], [], 0
    for line in truth_path.read_text().splitlines():
        r = json.loads(line)
        if "camera_id" not in r or "readable" not in r:
            continue
        if not r["camera_id"].startswith("cam"):
            continue
        every_pass.append(r)
        first, last = parse_ts(r["first_seen"]), parse_ts(r["last_seen"])
        # Whole passes only: seen from their start to their end while the
        # edge ran (a little margin for connecting and the last flush).
        if first < start or last > end:
            continue
        gap = dark.get(r["camera_id"])
        if gap and first < gap[1] and last > gap[0]:
            unseen += 1
            continue
        passes.append(r)
    reads = [e for e, _ in events.values()
             if e["kind"] in ("plate_read", "vehicle") and e["camera_id"].startswith("cam")]
    readable = [p for p in passes if p["readable"]]

    def in_view_of(p):
        first, last = parse_ts(p["first_seen"]), parse_ts(p["last_seen"])
        return [e for e in reads if e["camera_id"] == p["camera_id"]
                and first - tolerance <= parse_ts(e["ts"]) <= last + tolerance]

    # Every read that spells a readable pass's plate while it was in view.
    same_of = {}
    used = set()
    for i, p in enumerate(readable):
        same_of[i] = [e for e in in_view_of(p) if e.get("plate", {}).get("text") == p["plate"]]
        used.update(e["id"] for e in same_of[i])

    def explained(e):
        """Another pass (readable or not) was in view of e's camera then."""
        t = parse_ts(e["ts"])
        return sum(1 for q in every_pass if q["camera_id"] == e["camera_id"]
                   and parse_ts(q["first_seen"]) - tolerance <= t <= parse_ts(q["last_seen"]) + tolerance) > 1

    right, duplicated, wrong_time = 0, 0, 0
    missed = []
    for i, p in enumerate(readable):
        ts = parse_ts(p["ts"])
        in_view = in_view_of(p)
        same = same_of[i]
        timely = [e for e in same if abs(parse_ts(e["ts"]) - ts) <= tolerance]
        # A pass split in two: its right read, and another read of no
        # readable pass while no other vehicle was in view.
        split = [e for e in in_view if e["id"] not in used and not explained(e)]
        if len(same) == 1 and timely and not split:
            right += 1
            continue
        if len(same) > 1 or (same and split):
            duplicated += 1
        elif same:
            wrong_time += 1
        missed.append({"camera_id": p["camera_id"], "plate": p["plate"], "ts": p["ts"],
                       "events_in_view": [e.get("plate", {}).get("text") or e["kind"] for e in in_view]})
    in_window = [e for e in reads if start <= parse_ts(e["ts"]) <= end]
    plate_reads = [e for e in in_window if e["kind"] == "plate_read"]
    return {
        "restart_blackout_s": {c: round(b - a, 1) for c, (a, b) in dark.items()},
        "passes_during_restart_excluded": unseen,
        "passes": len(passes),
        "readable_passes": len(readable),
        "readable_passes_right": right,
        "readable_pass_accuracy": right / len(readable) if readable else None,
        "readable_passes_duplicated": duplicated,
        "readable_passes_off_in_time": wrong_time,
        "readable_passes_not_right": missed,
        "vehicle_events": len(in_window),
        "plate_read_events": len(plate_reads),
        "plate_reads_matching_no_readable_pass": len([e for e in plate_reads if e["id"] not in used]),
        "events_per_pass": len(in_window) / len(passes) if passes else None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--detect-fps", type=float, default=10)
    ap.add_argument("--loop", type=float, default=60)
    # The pass logic was tuned on seed 4000; the default is a seed it never saw.
    ap.add_argument("--seed", type=int, default=4100)
    ap.add_argument("--seconds", type=float, default=180, help="how long the edge runs in all")
    ap.add_argument("--kill-at", type=float, default=60, help="SIGKILL the edge this many seconds in (0: never)")
    ap.add_argument("--outage-at", type=float, default=100, help="take the receiver down this many seconds in")
    ap.add_argument("--outage", type=float, default=30, help="receiver outage in seconds (0: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--plate-views", type=int, default=0, help="crop views per plate read (0: the edge's default)")
    ap.add_argument("--tolerance", type=float, default=1.0, help="seconds between event and pass time")
    ap.add_argument("--json", type=Path, help="write the scores here too")
    args = ap.parse_args()
    if not EDGE.exists():
        sys.exit(f"{EDGE} is missing: run `make build` first")

    tmp = Path(tempfile.mkdtemp(prefix="safecity-eval-edge-"))
    print(f"work folder {tmp}", flush=True)
    sim, urls = start_sim(args, tmp)
    server_port, api_port = free_port(), free_port()
    receiver = Receiver(server_port)
    receiver.up()
    config = tmp / "edge.toml"
    write_config(config, args, server_port, api_port, urls, tmp / "spool")
    log = open(tmp / "edge.log", "w")
    edge = start_edge(config, log)
    t0 = time.time()
    result = {"settings": vars(args) | {"json": str(args.json) if args.json else None}}
    try:
        # The first press once the edge is up: alarm delivery latency.
        alarm_id, pressed = press(api_port)
        while alarm_id not in receiver.snapshot() and time.time() - pressed < 30:
            time.sleep(0.01)
        got = receiver.snapshot().get(alarm_id)
        result["alarm_latency_s"] = round(got[1] - pressed, 3) if got else None
        print(f"alarm {alarm_id}: at the receiver after {result['alarm_latency_s']} s", flush=True)
        while alarm_id not in receiver.clips and time.time() - pressed < 60:
            time.sleep(0.1)
        clip = receiver.clips.get(alarm_id)
        result["clip_after_press_s"] = round(clip[1] - pressed, 1) if clip else None
        result["clip_bytes"] = len(clip[0]) if clip else None
        result["clip_is_mp4"] = bool(clip and clip[0][4:8] == b"ftyp")
        print(f"clip: {result['clip_bytes']} bytes after {result['clip_after_press_s']} s", flush=True)

        killed = restarted = down = outage_over = False
        killed_at = None
        while time.time() - t0 < args.seconds:
            t = time.time() - t0
            if args.kill_at and not killed and t >= args.kill_at:
                edge.send_signal(signal.SIGKILL)
                edge.wait()
                killed, killed_at = True, time.time()
                print(f"{t:.0f} s: edge killed (SIGKILL), restarting", flush=True)
                edge = start_edge(config, log)
                restarted = True
            if args.outage and not down and not outage_over and t >= args.outage_at:
                receiver.down()
                down = True
                print(f"{t:.0f} s: receiver down for {args.outage:.0f} s", flush=True)
            if down and receiver.server is not None and t >= args.outage_at + args.outage:
                receiver.up()
                down, outage_over = False, True
                print(f"{t:.0f} s: receiver up", flush=True)
            time.sleep(0.2)
        end = time.time()
        result["edge_metrics"] = edge_metrics(api_port)
        if down:
            receiver.up()
        edge.send_signal(signal.SIGINT)
        try:
            edge.wait(timeout=60)
        except subprocess.TimeoutExpired:
            edge.kill()
        # A clean stop flushes open passes into the spool; a second run
        # delivers whatever is left.
        edge = start_edge(config, log)
        deadline = time.time() + 60
        while time.time() < deadline:
            before = len(receiver.snapshot())
            time.sleep(3)
            if len(receiver.snapshot()) == before:
                break
        edge.send_signal(signal.SIGINT)
        edge.wait(timeout=60)
        with open(tmp / "events.jsonl", "w") as f:
            for e, at in receiver.snapshot().values():
                e.pop("snapshot", None)
                f.write(json.dumps(e | {"received": at}) + "\n")
        result["restarted"] = restarted
        result["deliveries_including_resends"] = receiver.deliveries
        result["distinct_events"] = len(receiver.snapshot())
        result |= score(tmp / "truth.jsonl", receiver.snapshot(), t0 + 5, end - 5, args.tolerance, killed_at)
    finally:
        if edge.poll() is None:
            edge.kill()
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
