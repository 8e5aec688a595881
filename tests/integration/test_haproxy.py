"""docs/load-balancing.md, tested: a real HAProxy (Debian's) discovers an orch service through
its `resolvers` section and `server-template` over the SRV records `orch daemon` serves, and
balances to the healthy set. Every healthy instance gets requests; an instance made unhealthy
leaves HAProxy's rotation within a few seconds (and its replacement joins); scaling 3 -> 2 is
followed the same way. orch-demo answers GET / with its hostname, the container id's first 12
hex digits, which is how a response names the instance. Skips when haproxy is not installed."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (OrchTestCase, free_port, http_get, spawn_daemon)  # noqa: E402

HAPROXY = shutil.which("haproxy")


def haproxy_config(dns_port, listen_port, srv_name, slots=10):
    """The configuration docs/load-balancing.md shows, with test ports."""
    return f"""\
global
    maxconn 1000

resolvers orch
    nameserver orch 127.0.0.1:{dns_port}
    accepted_payload_size 4096
    resolve_retries 2
    timeout resolve 500ms
    timeout retry 500ms
    hold valid 1s
    hold obsolete 0s
    hold nx 1s
    hold other 1s

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 2
    option redispatch 1

frontend web
    bind 127.0.0.1:{listen_port}
    default_backend web

backend web
    balance roundrobin
    server-template web {slots} {srv_name} resolvers orch resolve-prefer ipv4 init-addr none
"""


@unittest.skipIf(HAPROXY is None, "haproxy is not installed (Debian: apt-get install haproxy)")
class HaproxyTest(OrchTestCase):
    APP_PREFIX = "hap"

    def setUp(self):
        super().setUp()
        self.dns_port = free_port(socket.SOCK_DGRAM)
        self.appname = self.app("hap")
        self.log = open(os.path.join(self.tmp, "daemon.log"), "a")
        self.daemon = spawn_daemon(self.state, "--dns", f"127.0.0.1:{self.dns_port}", "--dns-ttl",
                                   "1s", "--resync", "2s", log=self.log, wait_lock=False)
        self.haproxy = None

    def tearDown(self):
        if self.haproxy is not None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()
            self.haproxy_log.close()
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
        self.log.close()
        super().tearDown()

    def spec(self, replicas):
        return self.write("s.yaml", f"""\
app: {self.appname}
services:
  web:
    image: orch-demo:1
    replicas: {replicas}
    ports: [{{name: http, container: 8080}}]
    health: {{http: /healthz, interval: 300ms, timeout: 500ms, retries: 2}}
    update: {{stop_grace: 1s}}
""")

    def start_haproxy(self):
        self.port = free_port()
        cfg = self.write("haproxy.cfg", haproxy_config(
            self.dns_port, self.port, f"_http._tcp.web.{self.appname}.orch"))
        check = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True,
                               timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.haproxy_log = open(os.path.join(self.tmp, "haproxy.log"), "a")
        self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=self.haproxy_log,
                                        stderr=subprocess.STDOUT)

    def healthy(self):
        """The ids (12 hex digits) of the instances `orch status` calls healthy."""
        st = self.ok("status", f"{self.appname}/web", "-o", "json").json()
        return {i["id"][:12] for i in st["instances"]
                if i["health"] == "healthy" and i["state"] == "running"}, st

    def batch(self, n=30):
        """n requests through HAProxy: {instance: count}, and how many failed."""
        got, failed = {}, 0
        for _ in range(n):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=3) as r:
                    body = r.read().decode().split()
                inst = body[2] if len(body) >= 3 else "?"
                got[inst] = got.get(inst, 0) + 1
            except Exception:  # noqa: BLE001
                failed += 1
        return got, failed

    def wait_serving(self, want, what, timeout=20):
        """Batches until the instances answering through HAProxy are exactly `want`, each with
        some requests; returns the seconds it took and the failed requests on the way."""
        t0 = time.monotonic()
        failed = 0
        last = None
        while time.monotonic() - t0 < timeout:
            got, f = self.batch()
            failed += f
            last = got
            if set(got) == want:
                return time.monotonic() - t0, failed, got
            time.sleep(0.2)
        self.fail(f"{what}: HAProxy served {last}, want {sorted(want)} "
                  f"(haproxy log: {open(self.haproxy_log.name).read()[-2000:]})")

    def test_haproxy_follows_the_healthy_set(self):
        self.ok("apply", self.spec(3), "--wait", "--timeout", "90s", timeout=150)
        want, st = self.healthy()
        self.assertEqual(len(want), 3, st)
        self.start_haproxy()

        took, failed, got = self.wait_serving(want, "all 3 healthy instances")
        print(f"\nHAProxy serves all 3 instances after {took:.1f}s", file=sys.stderr)
        got, failed = self.batch(60)
        self.assertEqual(failed, 0)
        self.assertEqual(set(got), want)
        for inst, n in got.items():
            self.assertGreaterEqual(n, 15, got)  # round robin over 3: 20 each

        # one instance turns unhealthy: it leaves the SRV set, so HAProxy's rotation
        victim = next(i for i in st["instances"] if i["id"][:12] in want)
        http_get(victim["endpoints"]["http"], "/admin/unhealthy")
        t0 = time.monotonic()
        deadline = t0 + 15
        while time.monotonic() < deadline:
            got, _ = self.batch(12)
            if victim["id"][:12] not in got:
                break
            time.sleep(0.1)
        left = time.monotonic() - t0
        self.assertLess(left, 15, "the unhealthy instance stayed in HAProxy's rotation")
        for _ in range(3):
            got, _ = self.batch(12)
            self.assertNotIn(victim["id"][:12], got)
        print(f"unhealthy -> out of HAProxy's rotation: {left:.1f}s", file=sys.stderr)

        # orch replaces it; HAProxy picks the replacement up the same way
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            want, st = self.healthy()
            if len(want) == 3 and victim["id"][:12] not in want:
                break
            time.sleep(0.5)
        self.assertEqual(len(want), 3, st)
        took, _, _ = self.wait_serving(want, "the replacement")
        print(f"replacement healthy -> served: {took:.1f}s", file=sys.stderr)

        # scale to 2: the instance that goes leaves the registry a TTL before it stops
        self.ok("scale", f"{self.appname}/web=2")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            want, st = self.healthy()
            if len(want) == 2 and len(st["instances"]) == 2:
                break
            time.sleep(0.3)
        self.assertEqual(len(want), 2, st)
        took, failed, _ = self.wait_serving(want, "the 2 instances left")
        print(f"scaled to 2 -> served by 2: {took:.1f}s ({failed} failed requests on the way)",
              file=sys.stderr)
        got, failed = self.batch(40)
        self.assertEqual(failed, 0)
        self.assertEqual(set(got), want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
