"""Published ports (docs/contract.md sections 1 and 3), tested with real traffic on loopback: `orch daemon`
serves a service's `published` port through its balancer while a bounded load (a thread pool
making about RATE requests per second, a new connection per request) runs through it:

- both balance modes spread requests evenly over equal instances (within 10 %);
- a rolling update of 5 instances, a scale 5 -> 1 -> 5 and an instance made unhealthy cost no
  failed request;
- an instance killed from outside (docker kill) costs at most the requests in flight on it, and
  no request that started after the engine's `die` event fails (no new connection went to it);
- a published port taken by something else is an event, `status` shows it and `apply --wait`
  fails (exit 3);
- an apply without a daemon warns in one line that published ports need one.

orch-demo answers GET / with "orch-demo VERSION HOSTNAME", the hostname being the container id's
first 12 hex digits, which is how a response names its instance. The figures are printed on
stderr (failed requests per scenario, the kill's cost)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (RUN_ID, OrchTestCase, docker, free_port, http_get,
                      spawn_daemon, stop_process)  # noqa: E402

RATE = 40      # requests per second during the scenarios
WORKERS = 8    # at most this many requests in flight
HEALTH = "http: /healthz, interval: 300ms, timeout: 500ms, retries: 2"


def one_request(port, timeout=5.0):
    """GET / through the published port on a new connection: (instance or None, error or None,
    start, end) with monotonic times."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Connection": "close"})
        r = conn.getresponse()
        body = r.read().decode()
        if r.status != 200:
            return None, f"status {r.status}", t0, time.monotonic()
        parts = body.split()
        return (parts[2] if len(parts) >= 3 else "?"), None, t0, time.monotonic()
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}", t0, time.monotonic()
    finally:
        conn.close()


class Load:
    """About `rate` requests per second from a pool of threads until stop(); every request is
    recorded as (instance, error, start, end)."""

    def __init__(self, port, rate=RATE, workers=WORKERS):
        self.port = port
        self.rate = rate
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sem = threading.Semaphore(workers)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.workers = []

    def start(self):
        self.thread.start()
        return self

    def one(self):
        try:
            res = one_request(self.port)
            with self.lock:
                self.results.append(res)
        finally:
            self.sem.release()

    def run(self):
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stopping.is_set():
            self.sem.acquire()
            t = threading.Thread(target=self.one, daemon=True)
            t.start()
            self.workers.append(t)
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()  # behind: do not burst to catch up

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=30)
        for t in self.workers:
            t.join(timeout=10)
        with self.lock:
            return list(self.results)


def failures(results):
    return [r for r in results if r[1] is not None]


class PublishedTest(OrchTestCase):
    """One daemon and one 5-instance service for every scenario (in name order)."""

    APP_PREFIX = "pub"

    @classmethod
    def setUpClass(cls):
        cls.figures = []

    @classmethod
    def tearDownClass(cls):
        print("\npublished-port figures:", file=sys.stderr)
        for line in cls.figures:
            print(f"  {line}", file=sys.stderr)

    def setUp(self):
        super().setUp()
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        self.dns_port = free_port(socket.SOCK_DGRAM)
        self.port = free_port()
        self.appname = self.app(f"p{self._testMethodName[5]}")
        self.daemon = None
        self.log = open(os.path.join(self.tmp, "daemon.log"), "a")

    def tearDown(self):
        self.stop_daemon()
        self.log.close()
        super().tearDown()

    def start_daemon(self):
        self.daemon = spawn_daemon(self.state, "--dns", f"127.0.0.1:{self.dns_port}", "--dns-ttl",
                                   "1s", "--resync", "2s", log=self.log, wait_lock=False)
        self.assertIsNone(self.daemon.poll(), self.daemon_log())

    def stop_daemon(self):
        if self.daemon is None:
            return
        stop_process(self.daemon)
        self.daemon = None

    def daemon_log(self):
        with open(self.log.name) as f:
            return f.read()[-3000:]

    def spec(self, replicas, image="orch-demo:1", balance="round_robin", port=None):
        port = port or self.port
        return self.write("s.yaml", f"""\
app: {self.appname}
services:
  web:
    image: {image}
    replicas: {replicas}
    ports: [{{name: http, container: 8080, published: {port}, balance: {balance}}}]
    health: {{{HEALTH}}}
    update: {{stop_grace: 2s, deadline: 60s}}
""")

    def apply(self, *args, **kw):
        return self.ok("apply", *args, "--wait", "--timeout", "120s", timeout=180, **kw)

    def status(self):
        return self.ok("status", f"{self.appname}/web", "-o", "json").json()

    def healthy_ids(self):
        st = self.status()
        return {i["id"][:12] for i in st["instances"]
                if i["health"] == "healthy" and i["state"] == "running"}, st

    def wait_healthy(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids, st = self.healthy_ids()
            if len(ids) == n and len(st["instances"]) == n:
                return ids
            time.sleep(0.3)
        self.fail(f"not {n} healthy instances: {st}")

    def wait_served(self, want, timeout=20):
        """Until sequential requests reach exactly the instances `want`."""
        deadline = time.monotonic() + timeout
        got = set()
        while time.monotonic() < deadline:
            got = {one_request(self.port)[0] for _ in range(3 * len(want))}
            if got == want:
                return
            time.sleep(0.2)
        self.fail(f"served by {got}, want {want}\n{self.daemon_log()}")

    def spread(self, n_requests):
        counts = {}
        for _ in range(n_requests):
            inst, err, _, _ = one_request(self.port)
            self.assertIsNone(err)
            counts[inst] = counts.get(inst, 0) + 1
        return counts

    def assert_no_failures(self, results, what):
        bad = failures(results)
        self.figures.append(f"{what}: {len(results)} requests, {len(bad)} failed")
        self.assertGreater(len(results), 0, what)
        self.assertEqual(bad, [], f"{what}: {len(bad)} of {len(results)} failed: {bad[:5]}\n"
                                  f"{self.daemon_log()}")

    # ---- the scenarios ----------------------------------------------------------------------

    def test_1_balance_modes_spread_evenly(self):
        self.start_daemon()
        self.apply(self.spec(5))
        ids = self.wait_healthy(5)
        self.wait_served(ids)
        for mode in ("round_robin", "least_conn"):
            if mode != "round_robin":
                r = self.apply(self.spec(5, balance=mode))
                self.assertIn("no new revision", r.out)
                self.assertEqual(self.status()["revision"], 1)
            counts = self.spread(200)
            self.assertEqual(set(counts), ids, counts)
            mean = 200 / 5
            worst = max(abs(c - mean) / mean for c in counts.values())
            self.figures.append(f"{mode}: 200 requests over 5 instances: "
                                f"{sorted(counts.values())} (worst {worst:.0%} off)")
            self.assertLessEqual(worst, 0.10, f"{mode}: {counts}")
        # the figures reach status
        time.sleep(1.2)
        st = self.status()
        tr = st["traffic"]
        self.assertEqual(tr["published"], f"127.0.0.1:{self.port}")
        self.assertEqual(tr["balance"], "least_conn")
        self.assertTrue(tr["served"], tr)
        self.assertGreaterEqual(tr["connections"], 400)
        self.assertGreaterEqual(tr["requests"], 400)
        self.assertGreater(tr["bytes_out"], 0)
        self.assertGreater(tr["requests_per_second"], 0)
        text = self.ok("status", f"{self.appname}/web").out
        self.assertIn(f"Published: 127.0.0.1:{self.port} (http, least_conn)", text)

    def test_2_rolling_update_and_scaling_under_load(self):
        self.start_daemon()
        self.apply(self.spec(5))
        ids = self.wait_healthy(5)
        self.wait_served(ids)

        load = Load(self.port).start()
        time.sleep(1)
        t0 = time.monotonic()
        self.apply(self.spec(5, image="orch-demo:2"))
        took = time.monotonic() - t0
        time.sleep(1)
        results = load.stop()
        self.figures.append(f"rolling update of 5 took {took:.1f}s")
        self.assert_no_failures(results, "rolling update of 5 under load")
        self.assertEqual(self.status()["revision"], 2)
        v2 = [r for r in results if r[0] is not None]
        self.assertTrue(any(r[3] > t0 for r in v2))

        load = Load(self.port).start()
        time.sleep(1)
        self.ok("scale", f"{self.appname}/web=1", timeout=120)
        self.wait_healthy(1)
        time.sleep(1)
        self.ok("scale", f"{self.appname}/web=5", timeout=120)
        self.wait_healthy(5)
        time.sleep(1)
        results = load.stop()
        self.assert_no_failures(results, "scale 5 -> 1 -> 5 under load")

    def test_3_unhealthy_and_killed_instances(self):
        self.start_daemon()
        self.apply(self.spec(5))
        ids = self.wait_healthy(5)
        self.wait_served(ids)
        st = self.status()

        # one instance turns unhealthy: it leaves the set; orch replaces it
        victim = st["instances"][0]
        load = Load(self.port).start()
        time.sleep(1)
        http_get(victim["endpoints"]["http"], "/admin/unhealthy")
        t_flip = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now, st = self.healthy_ids()
            if len(now) == 5 and victim["id"][:12] not in now:
                break
            time.sleep(0.3)
        time.sleep(1)
        results = load.stop()
        self.assert_no_failures(results, "an instance made unhealthy under load")
        late = [r for r in results if r[0] == victim["id"][:12] and r[2] > t_flip + 3]
        self.assertEqual(late, [], "the unhealthy instance still got new connections")

        # one instance killed from outside: only requests in flight on it may fail
        ids = self.wait_healthy(5)
        self.wait_served(ids)
        st = self.status()
        victim = st["instances"][0]["id"]
        events = subprocess.Popen(
            ["docker", "events", "--filter", f"container={victim}", "--filter", "event=die",
             "--format", "{{.TimeNano}}"], stdout=subprocess.PIPE, text=True)
        load = Load(self.port).start()
        time.sleep(1.5)
        docker("kill", victim)
        line = events.stdout.readline().strip()
        events.terminate()
        events.wait(timeout=10)
        events.stdout.close()
        # the die event's wall time, then in the monotonic clock of the results
        die_mono = time.monotonic() - (time.time() - int(line) / 1e9)
        time.sleep(3)
        results = load.stop()
        bad = failures(results)
        after = [r for r in bad if r[2] > die_mono]
        in_flight = [r for r in bad if r[2] <= die_mono]
        self.figures.append(
            f"docker kill under load: {len(results)} requests, {len(bad)} failed "
            f"({len(in_flight)} in flight at the kill, {len(after)} started after the die event)")
        self.assertEqual(after, [], f"requests after the die event failed: {after[:5]}\n"
                                    f"{self.daemon_log()}")
        self.assertLessEqual(len(in_flight), WORKERS)
        self.wait_healthy(5)

    def test_4_port_taken_is_an_event_and_fails_wait(self):
        self.start_daemon()
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", self.port))
        blocker.listen()
        try:
            r = self.orch("apply", self.spec(1), "--wait", "--timeout", "60s", timeout=120)
            self.assertEqual(r.code, 3, r)
            self.assertIn(f"127.0.0.1:{self.port}", r.err)
            st = self.status()
            self.assertFalse(st["traffic"]["served"], st["traffic"])
            self.assertIn("address already in use", st["traffic"]["error"])
            self.assertTrue(any(e["kind"] == "published" and "cannot serve" in e["message"]
                                for e in st["events"]), st["events"])
            text = self.ok("status", f"{self.appname}/web").out
            self.assertIn("not served", text)
        finally:
            blocker.close()
        # freed: the daemon serves it at its next try
        ids = self.wait_healthy(1)
        self.wait_served(ids, timeout=15)
        self.assertTrue(self.status()["traffic"]["served"])

    def test_5_without_daemon_apply_warns(self):
        r = self.apply(self.spec(1))
        warn = [ln for ln in r.err.splitlines() if "published ports are served while" in ln]
        self.assertEqual(len(warn), 1, r)
        self.assertIn("instances keep their own endpoints", warn[0])
        st = self.status()
        self.assertFalse(st["traffic"]["served"])
        self.assertEqual(len(st["instances"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
