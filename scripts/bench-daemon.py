#!/usr/bin/env python3
"""Load and fault benchmark of `airlock serve` (issue 9). Python 3 standard library only.

Run through scripts/bench-daemon.sh, which builds the binary and owns the throwaway work directory. Each phase gets
its own fresh AIRLOCK_HOME under --work and its own daemon; every table is printed to stdout as markdown, progress
goes to stderr. The phases:

  runs   N concurrent POST /v1/runs (`sh -c 'echo run $0' i`) against --max-runs: every run must exit 0 with its own
         output; wall time, runs/s, time per run, how many were queued, and the peak number of `airlock run`
         processes alive at once (sampled from /proc), which must never exceed --max-runs.
  api    an open-loop, fixed-rate mix of GET /v1/whoami, POST /v1/guard/scan, POST /v1/redact and requests with an
         invalid token (each answered 401 with one audit record, or 429 without one beyond the daemon's 50/s budget
         of audited refusals) over keep-alive connections on the Unix socket; latency from each request's scheduled
         time (so a slow daemon cannot hide behind a slow client); daemon RSS before, in the middle and after; then
         `airlock audit verify`, and every 401 answered must have its own record.
  fault  audited 401 load, long sandboxed runs and a stream of short ones, kill -9 of the daemon mid-load: no run
         or sandboxed process may survive it (5 s), the log verifies (a torn tail repaired is allowed, and
         counted), every 401 answered before the kill is in the log, the vault opens, `airlock ps` shows no runs,
         and a restarted daemon serves and runs. Several rounds on the same home.

Each invalid-token request goes to GET /v1/runs/<16 hex digits of its own number>: the refusal's audit record names
the path, so each answered 401 is matched with its own record, not just counted. The exit status is 0 when every
check passed.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time

PASS = "bench-daemon: a throwaway passphrase for a throwaway home"
SECRET = "bench-api-key"
POLICY = """version = 1
[limits]
wall_seconds = 120
[agents.worker]
tools = ["t"]
[tools.t]
[tools.t.fs]
read = ["${WORKSPACE}"]
write = ["${WORKSPACE}"]
[tools.t.exec]
allow = ["sh", "echo", "sleep"]
"""
# A sleep argument nothing else on the machine uses: the fault phase finds the sandboxed sleeps by it.
LONG_SLEEP = "37.4242"
CHURN_SLEEP = "0.4243"
REFUSED = re.compile(r"API request refused: unknown token \(GET /v1/runs/([0-9a-f]{16}) ")


def log(msg):
    print(f"bench-daemon: {msg}", file=sys.stderr, flush=True)


def fail(msg):
    raise SystemExit(f"bench-daemon: error: {msg}")


# ---------------------------------------------------------------------------------------------------------------------
# Homes, the CLI and the daemon


class Home:
    """A fresh AIRLOCK_HOME with a vault, a policy that lets runs execute sh, echo and sleep, and agents."""

    def __init__(self, args, name):
        self.bin = args.airlock
        self.pids_file = os.path.join(args.work, "pids")
        self.dir = tempfile.mkdtemp(prefix=f"{name}-", dir=args.work)
        self.home = os.path.join(self.dir, "home")
        self.ws = os.path.join(self.dir, "ws")
        self.config = os.path.join(self.dir, "airlock.toml")
        self.socket = os.path.join(self.home, "airlock.sock")
        os.makedirs(self.ws)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "AIRLOCK_HOME": self.home,
            "AIRLOCK_PASSPHRASE": PASS,
        }
        kdf = ["--kdf-memory-mib", str(args.kdf_memory_mib)] + (["--insecure-kdf"] if args.kdf_memory_mib < 64 else [])
        self.cli("init", "--kek", "passphrase", *kdf)
        with open(self.config, "w") as f:
            f.write(POLICY)
        self.tokens = {}
        for agent, role in [("root", "admin"), ("worker", "agent"), ("aud", "auditor")]:
            out = self.cli("--json", "agent", "add", agent, "--role", role).stdout
            self.tokens[agent] = json.loads(out)["token"]

    def cli(self, *argv, stdin=None, check=True, timeout=300):
        p = subprocess.run(
            [self.bin, *argv],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and p.returncode != 0:
            fail(f"airlock {' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
        return p

    def refused_records(self):
        """The ids of the refused-token records in the log (GET /v1/runs/<id>), and how many refusals in all."""
        out = self.cli("audit", "export", "--format", "ocsf").stdout
        ids, refused = [], 0
        for line in out.splitlines():
            if "API request refused" not in line:
                continue
            refused += 1
            m = REFUSED.search(json.loads(line).get("message", ""))
            if m:
                ids.append(int(m.group(1), 16))
        return ids, refused

    def verify(self):
        p = self.cli("audit", "verify", check=False)
        return p.returncode, (p.stdout + p.stderr).strip()


class Daemon:
    def __init__(self, home, extra):
        self.home = home
        self.stderr_path = os.path.join(home.dir, f"serve-{time.time_ns()}.err")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [home.bin, "serve", "--config", home.config, "--listen", "127.0.0.1:0", *extra],
            env=home.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            # Its own session: a Ctrl-C at the terminal reaches this driver, which stops the daemon itself.
            start_new_session=True,
        )
        self.pid = self.proc.pid
        with open(home.pids_file, "a") as f:
            f.write(f"{self.pid}\n")
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline().decode() if ready else ""
        if "listening on" not in line:
            self.proc.kill()
            fail(f"the daemon did not start: {line!r} {open(self.stderr_path).read()}")
        self.url = line.split()[-1]

    def status(self):
        """VmRSS and VmHWM in KiB, and the thread count."""
        vals = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    vals[k] = int(v.split()[0])
        return vals

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_children_seconds(self):
        """CPU time of the daemon's reaped children (the `airlock run`s and, through them, their sandboxes)."""
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("the daemon did not stop within 60 s of SIGTERM")
        self.stderr.close()
        return code

    def ensure_dead(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------------------------------------
# /proc


def proc_table():
    """{pid: (ppid, state, argv)} of every process now."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        table[int(d)] = (int(rest[1]), rest[0].decode(), [a.decode(errors="replace") for a in argv if a])
    return table


def alive(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def descendants(table, root):
    kids = collections.defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        kids[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def run_supervisors(daemon_pid):
    """The `airlock run` processes the daemon started (its children running `run`)."""
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                if int(f.read().rsplit(b")", 1)[1].split()[1]) != daemon_pid:
                    continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if b"run" in argv[1:6] and b"--run-id" in argv:
            n += 1
    return n


class Sampler(threading.Thread):
    """Counts the daemon's `airlock run` children as often as it can; keeps the peak."""

    def __init__(self, daemon_pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.samples, self.stop = daemon_pid, 0, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, run_supervisors(self.pid))
            self.samples += 1
            time.sleep(0.001)


# ---------------------------------------------------------------------------------------------------------------------
# A small HTTP/1.1 client over the Unix socket: keep-alive, Content-Length and chunked bodies


def request(method, path, token=None, body=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: airlock\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return (head + "\r\n").encode() + data


class Conn:
    def __init__(self, socket):
        self.socket = socket
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_unix_connection(self.socket, limit=1 << 20)

    def close(self):
        if self.w is not None:
            self.w.close()
            self.w = None

    async def send(self, raw):
        """Sends a request and reads the answer's head: status and (length or None for chunked)."""
        self.w.write(raw)
        await self.w.drain()
        head = await self.r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked = None, False
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if length is None and not chunked:
            length = 0
        return status, length

    async def chunks(self):
        while True:
            n = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
            if n == 0:
                while await self.r.readuntil(b"\r\n") != b"\r\n":
                    pass
                return
            data = await self.r.readexactly(n)
            await self.r.readexactly(2)
            yield data

    async def call(self, raw):
        status, length = await self.send(raw)
        if length is not None:
            return status, await self.r.readexactly(length)
        return status, b"".join([c async for c in self.chunks()])


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(v):
    return f"{v * 1000:.1f} ms" if v < 10 else f"{v:.2f} s"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


# ---------------------------------------------------------------------------------------------------------------------
# Phase 1: runs


async def one_run(socket, token, body, t_start):
    """Starts a run; returns its events, each with the time it arrived."""
    c = Conn(socket)
    await c.open()
    try:
        status, length = await c.send(request("POST", "/v1/runs", token, body))
        if length is not None:
            return {"status": status, "body": (await c.r.readexactly(length)).decode(), "events": []}
        events, buf = [], b""
        async for chunk in c.chunks():
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    events.append((time.monotonic() - t_start, json.loads(line)))
        return {"status": status, "events": events}
    finally:
        c.close()


async def phase_runs(args):
    log(f"runs: {args.runs} concurrent runs against --max-runs {args.max_runs}")
    load0 = loadavg()
    home = Home(args, "runs")
    d = Daemon(home, ["--rate", "1000000", "--max-runs", str(args.max_runs)])
    try:
        rss0 = d.status()
        sampler = Sampler(d.pid)
        sampler.start()
        cpu0, kids0 = d.cpu_seconds(), d.cpu_children_seconds()
        t0 = time.monotonic()
        tasks = [
            one_run(
                home.socket,
                home.tokens["worker"],
                {"tool": "t", "command": ["sh", "-c", "echo run $0", str(i)], "workspace": home.ws},
                t0,
            )
            for i in range(args.runs)
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        wall = time.monotonic() - t0
        cpu1, kids1 = d.cpu_seconds(), d.cpu_children_seconds()
        sampler.stop.set()
        sampler.join()
        rss1 = d.status()
        ok, queued, per_run, waits, own, bad = 0, 0, [], [], [], []
        for i, r in enumerate(results):
            if isinstance(r, BaseException):
                bad.append(f"run {i}: {r!r}")
                continue
            if r["status"] != 200:
                bad.append(f"run {i}: HTTP {r['status']} {r.get('body', '')[:200]}")
                continue
            ev = r["events"]
            kinds = [e["event"] for _, e in ev]
            out = "".join(e.get("data", "") for _, e in ev if e["event"] == "stdout")
            last = ev[-1][1] if ev else {}
            if "queued" in kinds:
                queued += 1
            started = next((t for t, e in ev if e["event"] == "started"), None)
            if last.get("event") == "exit" and last.get("code") == 0 and out == f"run {i}\n":
                ok += 1
                per_run.append(ev[-1][0])
                if started is not None:
                    waits.append(started)
                    own.append(ev[-1][0] - started)
            else:
                err = "".join(e.get("data", "") for _, e in ev if e["event"] == "stderr")
                bad.append(f"run {i}: last event {last}, stdout {out!r}, stderr {err[:300]!r}")
        code = d.stop()
    finally:
        d.ensure_dead()
    verify_code, verify_out = home.verify()
    print("\n### Runs\n")
    print(f"{args.runs} concurrent `POST /v1/runs` (`sh -c 'echo run $0' i`), daemon `--max-runs {args.max_runs}`, "
          f"one connection each on the Unix socket; the vault's passphrase slot uses Argon2id with "
          f"{args.kdf_memory_mib} MiB.\n")
    print("| runs | exit 0, right output | saw `queued` | wall time | runs/s | request to exit p50 | p99 | max "
          "| queue wait p50 (request to `started`) | `started` to exit p50 | peak `airlock run` processes "
          "(/proc samples) | daemon RSS before / after |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| {args.runs} | {ok} | {queued} | {wall:.2f} s | {ok / wall:.1f} | {ms(pct(per_run, 50))} "
          f"| {ms(pct(per_run, 99))} | {ms(max(per_run, default=float('nan')))} | {ms(pct(waits, 50))} "
          f"| {ms(pct(own, 50))} | {sampler.peak} (limit {args.max_runs}; {sampler.samples} samples) "
          f"| {mib(rss0['VmRSS'])} / {mib(rss1['VmRSS'])} |")
    print(f"\nCPU per run: {(kids1 - kids0) / args.runs * 1000:.0f} ms in `airlock run` and its sandbox (the "
          f"daemon's reaped children), {(cpu1 - cpu0) / args.runs * 1000:.1f} ms in the daemon; all of it over the "
          f"wall time: {((kids1 - kids0) + (cpu1 - cpu0)) / wall:.2f} cores of {os.cpu_count()}.")
    print(f"\nDaemon stopped with exit {code}; `airlock audit verify`: exit {verify_code}. Load average "
          f"before / after: {load0} / {loadavg()}.")
    problems = list(bad)
    if sampler.peak > args.max_runs:
        problems.append(f"{sampler.peak} `airlock run` processes at once, over the limit of {args.max_runs}")
    if verify_code != 0:
        problems.append(f"audit verify failed: {verify_out[-500:]}")
    for p in problems[:20]:
        print(f"- FAIL: {p}")
    return not problems


# ---------------------------------------------------------------------------------------------------------------------
# Phase 2 (and the fault phase's load): open-loop, fixed-rate requests

SCAN_TEXT = "The build finished; 12 tests passed. Please summarise the changes for the release notes."
REDACT_TEXT = "deploy with AKIAIOSFODNN7EXAMPLE in us-east-1, contact ops@example.com, see https://example.com/x"


def mix(i, tokens, fraction_unauth):
    """Request `i` of the mix: its kind and bytes. Every `1/fraction_unauth`-th request is an invalid-token one."""
    every = round(1 / fraction_unauth) if fraction_unauth > 0 else 0
    if every and i % every == every - 1:
        return "refused (invalid token)", request("GET", f"/v1/runs/{i:016x}", "not-a-valid-token-" + "x" * 32)
    k = i % 10
    if k < 4:
        return "GET /v1/whoami", request("GET", "/v1/whoami", tokens["worker"])
    if k < 7:
        return "POST /v1/guard/scan", request(
            "POST", "/v1/guard/scan", tokens["worker"], {"text": SCAN_TEXT, "classifier": False}
        )
    return "POST /v1/redact", request("POST", "/v1/redact", tokens["worker"], {"text": REDACT_TEXT})


class Load:
    """Sends `rate` requests per second for `duration` seconds, on schedule, over `conns` keep-alive connections."""

    def __init__(self, socket, tokens, rate, duration, conns, fraction_unauth, base=0):
        self.socket, self.tokens, self.rate, self.duration = socket, tokens, rate, duration
        self.base = base  # request numbers start here (distinct numbers across the fault phase's rounds)
        self.conns, self.fraction = conns, fraction_unauth
        self.latency = collections.defaultdict(list)  # from the scheduled time
        self.service = []  # from the moment it was written
        self.statuses = collections.Counter()
        self.errors = collections.Counter()
        self.acked_refusals = []
        self.done = 0
        self.last_done = None
        self.max_backlog = 0
        self.stopped = False

    async def worker(self, queue):
        c = Conn(self.socket)
        await c.open()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                n, due = item
                if self.stopped:
                    continue
                i = self.base + n
                kind, raw = mix(i, self.tokens, self.fraction)
                t_send = time.monotonic()
                try:
                    if c.w is None:
                        await c.open()
                    status, _ = await c.call(raw)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                    self.errors[type(e).__name__] += 1
                    c.close()
                    if self.stopped:
                        return
                    continue
                t = time.monotonic()
                self.latency[kind].append(t - due)
                self.service.append(t - t_send)
                self.statuses[(kind, status)] += 1
                self.done += 1
                self.last_done = t
                if status == 401 and kind.startswith("refused"):
                    self.acked_refusals.append(i)
        finally:
            c.close()

    async def run(self, on_tick=None):
        queue = asyncio.Queue()
        workers = [asyncio.create_task(self.worker(queue)) for _ in range(self.conns)]
        await asyncio.sleep(0.2)  # connections open before the clock starts
        total = int(self.rate * self.duration)
        self.t0 = t0 = time.monotonic()
        i, next_tick = 0, 1.0
        while i < total and not self.stopped:
            now = time.monotonic()
            due = min(total, int((now - t0) * self.rate) + 1)
            while i < due:
                queue.put_nowait((i, t0 + i / self.rate))
                i += 1
            self.max_backlog = max(self.max_backlog, queue.qsize())
            if on_tick is not None and now - t0 >= next_tick:
                next_tick += 1.0
                on_tick(now - t0)
            await asyncio.sleep(max(0.0, t0 + i / self.rate - time.monotonic()))
        self.sent = i
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers, return_exceptions=True)
        self.elapsed = (self.last_done or time.monotonic()) - t0


async def phase_api(args):
    log(f"api: {args.rate} req/s for {args.duration} s over {args.conns} connections")
    load0 = loadavg()
    home = Home(args, "api")
    d = Daemon(home, ["--rate", "1000000", "--max-runs", str(args.max_runs)])
    try:
        # Warm up: every route once, so "before" is a daemon that has served each kind.
        warm = Load(home.socket, home.tokens, 200, 1, 4, args.unauth_fraction)
        await warm.run()
        time.sleep(1)
        before = d.status()
        cpu0, ru0, wall0 = d.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        series = []

        def tick(t):
            s = d.status()
            series.append((t, s["VmRSS"], s["Threads"]))

        load = Load(home.socket, home.tokens, args.rate, args.duration, args.conns, args.unauth_fraction)
        await load.run(on_tick=tick)
        after = d.status()
        cpu1, ru1, wall1 = d.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        time.sleep(5)
        idle = d.status()
        code = d.stop()
    finally:
        d.ensure_dead()
    verify_code, verify_out = home.verify()
    ids, refused = home.refused_records()
    warm_refusals = warm.statuses[("refused (invalid token)", 401)]
    mid = min(series, key=lambda s: abs(s[0] - args.duration / 2)) if series else (0, before["VmRSS"], 0)
    lat_all = [v for vs in load.latency.values() for v in vs]
    wall = wall1 - wall0
    print("\n### API load\n")
    print(f"Open loop: {args.rate} requests/s scheduled for {args.duration} s ({load.sent} sent) over {args.conns} "
          f"keep-alive connections on the Unix socket; the mix: 40% `GET /v1/whoami`, 30% `POST /v1/guard/scan` "
          f"(short text, classifier off), 30% `POST /v1/redact`, with {args.unauth_fraction:.0%} of all requests "
          "replaced by invalid-token requests (`GET /v1/runs/<own number>`: 401 and one audit record each, or 429 "
          "and no record beyond the daemon's budget of audited refusals). Latency is from each request's "
          "scheduled time to its answer.\n")
    print("| scheduled | achieved | p50 | p99 | max | answered | by status | client errors | max client backlog |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---:|")
    by_status = collections.Counter()
    for (_, s), n in load.statuses.items():
        by_status[s] += n
    print(f"| {args.rate} req/s | {load.done / load.elapsed:.0f} req/s | {ms(pct(lat_all, 50))} "
          f"| {ms(pct(lat_all, 99))} | {ms(max(lat_all, default=float('nan')))} | {load.done} "
          f"| {', '.join(f'{s}: {n}' for s, n in sorted(by_status.items()))} "
          f"| {', '.join(f'{k}: {n}' for k, n in load.errors.items()) or 'none'} | {load.max_backlog} |")
    print("\n| request | answered | p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for kind, vs in sorted(load.latency.items()):
        print(f"| {kind} | {len(vs)} | {ms(pct(vs, 50))} | {ms(pct(vs, 99))} | {ms(max(vs))} |")
    print(f"\nService time (written to answered) p50 {ms(pct(load.service, 50))}, p99 {ms(pct(load.service, 99))}. "
          f"CPU during the load: daemon {(cpu1 - cpu0) / wall:.0%} of one core, this client "
          f"{((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) / wall:.0%}.\n")
    print("| daemon RSS before | middle | after | 5 s after | peak (VmHWM) | threads before / after |")
    print("|---:|---:|---:|---:|---:|---|")
    print(f"| {mib(before['VmRSS'])} | {mib(mid[1])} (at {mid[0]:.0f} s) | {mib(after['VmRSS'])} "
          f"| {mib(idle['VmRSS'])} | {mib(idle['VmHWM'])} | {before['Threads']} / {after['Threads']} |")
    if series:
        step = max(1, len(series) // 6)
        print("\nRSS during the load: " + ", ".join(f"{t:.0f} s {mib(r)}" for t, r, _ in series[::step]) + ".")
    acked = set(load.acked_refusals) | set(warm.acked_refusals)
    missing = acked - set(ids)
    answered_401 = load.statuses[("refused (invalid token)", 401)] + warm_refusals
    print("\n| `airlock audit verify` | 401 answers | \"API request refused\" records | each 401 has its record "
          "| records without a 401 answer |")
    print("|---|---:|---:|---|---:|")
    verdict = "ok" if verify_code == 0 else f"FAILED (exit {verify_code})"
    print(f"| {verdict} | {answered_401} | {refused} | {'yes' if not missing else f'NO: {len(missing)} missing'} "
          f"| {len(set(ids) - acked)} |")
    print(f"\nDaemon stopped with exit {code} (SIGTERM). Counts include a 1 s warm-up of {warm.done} requests "
          f"({warm_refusals} of them 401). Load average before / after: {load0} / {loadavg()}.")
    problems = []
    if verify_code != 0:
        problems.append(f"audit verify: {verify_out[-500:]}")
    if missing or refused != answered_401:
        problems.append(f"{len(missing)} answered 401s without a record; {refused} records for {answered_401} 401s")
    if load.errors:
        problems.append(f"client errors: {dict(load.errors)}")
    for p in problems:
        print(f"- FAIL: {p}")
    return not problems


# ---------------------------------------------------------------------------------------------------------------------
# Phase 3: kill -9 mid-load


async def fault_round(args, home, rnd):
    d = Daemon(home, ["--rate", "1000000", "--max-runs", str(args.max_runs)])
    row = {"round": rnd}
    churn_tasks = []
    try:
        # Long sandboxed runs, each streaming on its own connection until it ends (or the daemon dies).
        run_tasks, started = [], []
        for _ in range(args.fault_runs):
            q = asyncio.Queue()
            run_tasks.append(asyncio.create_task(long_run(home, q)))
            started.append(q)
        run_ids = [await asyncio.wait_for(q.get(), 60) for q in started]
        # Wait until every one of them has its sandboxed sleep running.
        deadline = time.monotonic() + 30
        while len(sandboxed(proc_table(), [LONG_SLEEP])) < args.fault_runs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # Audited load, and short runs started all along (so that the kill finds runs at every stage: spawning,
        # setting up the sandbox, running, exiting); the daemon is killed part way through.
        base = rnd * 10_000_000  # distinct request numbers across rounds
        load = Load(home.socket, home.tokens, args.fault_rate, args.fault_after + 5, args.conns, 0.5, base)
        churn = {"started": 0, "exited": 0}

        async def churn_run(i):
            body = {"tool": "t", "command": ["sh", "-c", f"echo churn $0; sleep {CHURN_SLEEP}", str(i)],
                    "workspace": home.ws}
            try:
                r = await one_run(home.socket, home.tokens["worker"], body, time.monotonic())
                if r["events"] and r["events"][-1][1].get("event") == "exit":
                    churn["exited"] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass

        def kill():
            # Everything the daemon's tree holds right now: all of it must die with the daemon.
            table = proc_table()
            row["tree"] = tree = descendants(table, d.pid)
            row["supervisors"] = sum(1 for p in tree if table[p][0] == d.pid and "--run-id" in table[p][2])
            row["sleeps"] = len(sandboxed(table, [LONG_SLEEP]))
            row["churning"] = len(sandboxed(table, [CHURN_SLEEP]))
            os.kill(d.pid, signal.SIGKILL)
            load.stopped = True
            row["killed_at"] = time.monotonic() - load.t0

        async def chaos():
            # Short runs at a steady rate, then the kill at a moment that falls anywhere within a second.
            await asyncio.sleep(0.3)
            kill_at = time.monotonic() + args.fault_after + random.uniform(0, 1)
            while time.monotonic() < kill_at:
                churn["started"] += 1
                churn_tasks.append(asyncio.create_task(churn_run(churn["started"])))
                await asyncio.sleep(min(1 / max(args.fault_churn, 0.001), max(0, kill_at - time.monotonic())))
            kill()

        chaos_task = asyncio.create_task(chaos())
        await load.run()
        await chaos_task
        d.proc.wait()
        t_kill = time.monotonic()
        # Nothing of the daemon's may survive it (within 5 s): not its tree at the kill, not a process naming
        # this home (an `airlock run` started after that snapshot), not a sandboxed sleep of ours.
        while True:
            table = proc_table()
            survivors = sorted(set(p for p in row["tree"] if alive(p))
                               | set(p for p, (_, st, argv) in table.items()
                                     if st != "Z" and home.dir in " ".join(argv))
                               | set(sandboxed(table, [LONG_SLEEP, CHURN_SLEEP])))
            if not survivors or time.monotonic() - t_kill > 5:
                break
            await asyncio.sleep(0.01)
        row["gone_after"] = time.monotonic() - t_kill
        row["survivors"] = [(p, table.get(p, (0, "", []))[2][:4]) for p in survivors]
        for t in run_tasks + churn_tasks:
            t.cancel()
        await asyncio.gather(*run_tasks, *churn_tasks, return_exceptions=True)
        row["runs"] = len(run_ids)
        row["churn"] = churn
        row["acked"] = sorted(load.acked_refusals)
        row["refused_429"] = load.statuses[("refused (invalid token)", 429)]
        row["answered"] = load.done
        # The log as the kill left it, before anything reopens it.
        row["verify_raw"] = home.verify()
        # Restart on the same home.
        d2 = Daemon(home, ["--rate", "1000000", "--max-runs", str(args.max_runs)])
        try:
            row["verify"] = home.verify()
            row["repaired"] = False
            if row["verify"][0] != 0 and "torn" in row["verify"][1].lower():
                home.cli("audit", "repair", check=False)
                row["repaired"] = True
                row["verify"] = home.verify()
            ids, _ = home.refused_records()
            got = set(ids)
            row["records"] = len([i for i in ids if base <= i < base + 10_000_000])
            row["missing"] = [i for i in row["acked"] if i not in got]
            secrets = home.cli("--json", "secret", "list", check=False)
            status = home.cli("status", check=False)
            row["vault"] = secrets.returncode == 0 and SECRET in secrets.stdout and status.returncode == 0
            if not row["vault"]:
                row["vault_err"] = (secrets.stderr + status.stderr).strip()[-300:]
            ps = home.cli("--json", "ps", check=False)
            row["ps"] = ps.stdout.strip() if ps.returncode == 0 else f"exit {ps.returncode}: {ps.stderr.strip()}"
            try:
                listed = json.loads(ps.stdout)
                row["ps_runs"] = len(listed if isinstance(listed, list) else listed.get("runs", []))
            except ValueError:
                row["ps_runs"] = None
            row["ps_empty"] = ps.returncode == 0 and row["ps_runs"] == 0
            # The restarted daemon serves, and runs.
            c = Conn(home.socket)
            await c.open()
            s1, _ = await c.call(request("GET", "/v1/whoami", home.tokens["worker"]))
            c.close()
            r = await one_run(home.socket, home.tokens["worker"],
                              {"tool": "t", "command": ["echo", "after"], "workspace": home.ws}, time.monotonic())
            last = r["events"][-1][1] if r["events"] else {}
            row["serves"] = s1 == 200 and last.get("code") == 0
        finally:
            row["stop"] = d2.stop()
            d2.ensure_dead()
        row["verify_end"] = home.verify()
    finally:
        d.ensure_dead()
    log(f"fault round {rnd}: killed at {row.get('killed_at', 0):.1f} s with {len(row['tree'])} processes in the "
        f"daemon's tree; {len(row['survivors'])} left after {row['gone_after'] * 1000:.0f} ms")
    return row


def sandboxed(table, markers):
    """The pids of live `sh` and `sleep` processes whose command line carries one of our marker arguments."""
    out = []
    for p, (_, st, argv) in table.items():
        if st != "Z" and argv and os.path.basename(argv[0]) in ("sleep", "sh"):
            line = " ".join(argv)
            if any(m in line for m in markers):
                out.append(p)
    return out


async def long_run(home, started):
    """A `sleep` run that streams until the daemon dies; puts its run id on `started`."""
    c = Conn(home.socket)
    await c.open()
    try:
        body = {"tool": "t", "command": ["sleep", LONG_SLEEP], "workspace": home.ws}
        status, _ = await c.send(request("POST", "/v1/runs", home.tokens["worker"], body))
        if status != 200:
            fail(f"a long run was refused: HTTP {status}")
        buf = b""
        try:
            async for chunk in c.chunks():
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    ev = json.loads(line)
                    if ev["event"] == "started":
                        started.put_nowait(ev["run"])
        except (OSError, asyncio.IncompleteReadError):
            pass  # the daemon died: the stream ends without an exit event
    finally:
        c.close()


async def phase_fault(args):
    log(f"fault: {args.fault_rounds} round(s) of kill -9 after {args.fault_after} s of load")
    load0 = loadavg()
    home = Home(args, "fault")
    home.cli("secret", "set", SECRET, stdin="not-a-real-key-0123456789abcdef\n")
    rows = [await fault_round(args, home, r) for r in range(1, args.fault_rounds + 1)]
    print("\n### Fault: kill -9 mid-load\n")
    print(f"Each round: a daemon on the same home (`--max-runs {args.max_runs}`), {args.fault_runs} sandboxed "
          f"`sleep {LONG_SLEEP}` runs started through it and running, then {args.fault_rate} requests/s over "
          f"{args.conns} connections, half of them with an invalid token (audited when answered 401), and "
          f"{args.fault_churn} short runs (`sh -c 'echo; sleep {CHURN_SLEEP}'`) started each second; after "
          f"{args.fault_after:g} s and a random fraction of a second more, `kill -9` of the daemon. Then: every process of the daemon's tree at the kill, "
          "every process naming the home, every sandboxed `sh`/`sleep` of ours must be gone within 5 s; the log is "
          "verified as the kill left it; the daemon is restarted on the same home and the rest is checked against "
          "it; then it is stopped (SIGTERM) and the log verified again.\n")
    print("| round | at the kill: processes in the daemon's tree (`airlock run`; sandboxed long sleeps; short runs' "
          "`sh`/`sleep`) | left after 5 s (all gone within) | verify as left | verify after restart "
          "| torn tail repaired | 401s answered before the kill | their records | refusals answered 429 (not "
          "audited) | records of refusals not answered | vault opens | runs in `airlock ps` | restarted daemon "
          "serves and runs | verify after stop |")
    print("|---:|---|---|---|---|---|---:|---:|---:|---:|---|---|---|---|")
    ok = True
    for r in rows:
        def v(x):
            return "ok" if x[0] == 0 else f"exit {x[0]}: {first_problem(x[1])}"
        found = len(r["acked"]) - len(r["missing"])
        print(f"| {r['round']} | {len(r['tree'])} ({r['supervisors']}; {r['sleeps']}; {r['churning']}) "
              f"| {len(r['survivors'])} ({r['gone_after'] * 1000:.0f} ms) | {v(r['verify_raw'])} "
              f"| {v(r['verify'])} | {'yes' if r['repaired'] else 'no'} | {len(r['acked'])} | {found} "
              f"| {r['refused_429']} | {r['records'] - found} "
              f"| {'yes' if r['vault'] else 'NO: ' + r.get('vault_err', '')} "
              f"| {r['ps_runs'] if r['ps_empty'] else 'NOT EMPTY: ' + r['ps'][:200]} "
              f"| {'yes' if r['serves'] else 'NO'} | {v(r['verify_end'])} |")
        ok &= (not r["survivors"] and r["verify"][0] == 0 and not r["missing"] and r["vault"] and r["ps_empty"]
               and r["serves"] and r["verify_end"][0] == 0 and r["sleeps"] == args.fault_runs)
    print(f"\nLoad average before / after: {load0} / {loadavg()}. Short runs: " + "; ".join(f"round {r['round']}: {r['churn']['started']} started, "
                                       f"{r['churn']['exited']} ended before the kill" for r in rows) + ".")
    for r in rows:
        if r["verify_raw"][0] != 0:
            print(f"\nRound {r['round']}, verify as the kill left the log:\n\n```\n{r['verify_raw'][1][-1500:]}\n```")
        if r["survivors"]:
            print(f"\n- FAIL: round {r['round']}: alive 5 s after the kill: {r['survivors'][:10]}")
        if r["missing"]:
            print(f"\n- FAIL: round {r['round']}: {len(r['missing'])} answered 401s have no record, e.g. "
                  f"{r['missing'][:5]}")
        if r["sleeps"] != args.fault_runs:
            print(f"\n- FAIL: round {r['round']}: {r['sleeps']} of {args.fault_runs} long runs were running at the kill")
    return ok


def first_problem(text):
    lines = [l for l in text.splitlines() if l.strip()]
    bad = [l for l in lines if any(w in l.lower() for w in ("torn", "error", "fail", "bad", "mismatch"))]
    return (bad or lines or [""])[0][:160].replace("|", "\\|")


# ---------------------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--airlock", required=True, help="the airlock binary")
    ap.add_argument("--work", required=True, help="a scratch directory (homes go under it)")
    ap.add_argument("--only", default="runs,api,fault", help="comma list of phases: runs, api, fault")
    ap.add_argument("--runs", type=int, default=200, help="concurrent runs (default 200)")
    ap.add_argument("--max-runs", type=int, default=8, help="the daemon's --max-runs (default 8)")
    ap.add_argument("--rate", type=int, default=1000, help="API requests per second (default 1000)")
    ap.add_argument("--duration", type=float, default=60, help="seconds of API load (default 60)")
    ap.add_argument("--conns", type=int, default=32, help="keep-alive connections (default 32)")
    ap.add_argument("--unauth-fraction", type=float, default=0.04,
                    help="share of API requests sent with an invalid token (default 0.04: 40/s at 1,000/s, within "
                    "the daemon's 50/s budget of audited refusals; beyond it refusals are answered 429 unrecorded)")
    ap.add_argument("--fault-rounds", type=int, default=3, help="kill -9 rounds (default 3)")
    ap.add_argument("--fault-after", type=float, default=3, help="seconds of load before the kill (default 3)")
    ap.add_argument("--fault-rate", type=int, default=400, help="requests/s during the fault phase (default 400)")
    ap.add_argument("--fault-runs", type=int, default=4, help="long runs alive at the kill (default 4)")
    ap.add_argument("--fault-churn", type=int, default=4, help="short runs started per second (default 4)")
    ap.add_argument("--kdf-memory-mib", type=int, default=8,
                    help="Argon2id memory of the homes' passphrase slot (default 8, with --insecure-kdf; airlock "
                    "init's default is 64). Each run started through the daemon unlocks the vault itself, so this "
                    "is part of every run's cost")
    args = ap.parse_args()
    # SIGTERM and SIGINT unwind like an exception, so that every daemon started is stopped on the way out (SIGINT
    # explicitly: the wrapper starts this in the background, where it would be ignored).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    args.airlock = os.path.realpath(args.airlock)
    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    for p in phases:
        if p not in ("runs", "api", "fault"):
            fail(f"unknown phase {p!r}")
    if "fault" in phases and args.fault_runs >= args.max_runs:
        fail("--fault-runs must be below --max-runs (all of them must be running at the kill, with room for "
             "the short runs)")
    version = subprocess.run([args.airlock, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"## airlock serve under load ({version}; {os.cpu_count()} CPUs; kernel {os.uname().release})")
    ok = True
    for p in phases:
        ok &= asyncio.run({"runs": phase_runs, "api": phase_api, "fault": phase_fault}[p](args))
        sys.stdout.flush()
    print("\nAll checks passed." if ok else "\nSOME CHECKS FAILED (see FAIL lines above).")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
