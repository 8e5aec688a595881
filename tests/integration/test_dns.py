"""The DNS registry served by `orch daemon` (docs/dns.md), queried with dig against a
daemon managing real apps: A, SRV with the ports `status` shows, instance names, NXDOMAIN with
SOA, REFUSED, NODATA after scaling to 0, TCP, an unhealthy instance leaving the SRV set within
about one probe interval, truncation over UDP with 40 instances and the full set over TCP, and a
client that follows the registry seeing no failed request during a rolling update."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (OrchTestCase, containers, docker, free_port, http_get,
                      service_yaml, spawn_daemon, spec_yaml)  # noqa: E402


class DnsTest(OrchTestCase):
    APP_PREFIX = "dns"

    def setUp(self):
        super().setUp()
        self.port = free_port(socket.SOCK_DGRAM)
        self.appname = self.app("dns")
        self.log = open(os.path.join(self.tmp, "daemon.log"), "a")
        self.daemon = spawn_daemon(self.state, "--dns", f"127.0.0.1:{self.port}", "--dns-ttl", "1s",
                                   "--resync", "2s", log=self.log, wait_lock=False)

    def tearDown(self):
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
        self.log.close()
        super().tearDown()

    def dig(self, *args):
        p = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), "+time=2", "+tries=1"] +
                           list(args), capture_output=True, text=True, timeout=30)
        return p.stdout

    def short(self, name, qtype, *extra):
        return [l for l in self.dig("+short", name, qtype, *extra).splitlines() if l.strip()]

    def spec(self, replicas, image="orch-demo:1"):
        return self.write("s.yaml", spec_yaml(self.appname, service_yaml(
            "web", image, replicas, ports=(("http", 8080), ("admin", 9090)),
            health="http: /healthz, port: http, interval: 300ms, timeout: 500ms, retries: 2",
            update="stop_grace: 1s, max_surge: 1, max_unavailable: 0")))

    def wait_for(self, what, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.2)
        self.fail(f"timed out waiting for {what}")

    def test_records(self):
        self.ok("apply", self.spec(3), "--wait", "--timeout", "60s")
        zone = f"web.{self.appname}.orch."
        st = self.ok("status", f"{self.appname}/web", "-o", "json").json()
        ports = {int(i["endpoints"]["http"].split(":")[1]): i["id"][:12] for i in st["instances"]}
        self.assertEqual(self.short(zone, "A"), ["127.0.0.1"])  # deduplicated
        srv = self.short(f"_http._tcp.{zone}", "SRV")
        got = {int(r.split()[2]): r.split()[3] for r in srv}
        self.assertEqual({p: t.split(".")[0] for p, t in got.items()}, ports)
        for r in srv:
            prio, weight = r.split()[:2]
            self.assertEqual((prio, weight), ("0", "1"))
        # SRV of the service alone is its first port; the additional section has the A records
        full = self.dig(zone, "SRV")
        self.assertIn("ADDITIONAL SECTION", full)
        self.assertEqual(len(self.short(zone, "SRV")), 3)
        inst = next(iter(ports.values()))
        self.assertEqual(self.short(f"{inst}.{zone}", "A"), ["127.0.0.1"])
        # unknown name in the zone: NXDOMAIN with the SOA; outside: REFUSED; case-insensitive
        out = self.dig(f"nosuch.{self.appname}.orch.", "A")
        self.assertIn("status: NXDOMAIN", out)
        self.assertIn("SOA", out.split("AUTHORITY SECTION")[1])
        self.assertIn("status: REFUSED", self.dig("example.com.", "A"))
        self.assertEqual(self.short(zone.upper(), "A"), ["127.0.0.1"])
        # TCP
        self.assertEqual(len(self.short(f"_http._tcp.{zone}", "SRV", "+tcp")), 3)

        # an unhealthy instance leaves the SRV set within about one probe interval
        victim = st["instances"][0]
        http_get(victim["endpoints"]["http"], "/admin/unhealthy")
        t0 = time.monotonic()
        self.wait_for("the unhealthy instance out of the SRV set", lambda: victim["id"][:12] not in
                      " ".join(self.short(f"_http._tcp.{zone}", "SRV")), timeout=10)
        print(f"\nunhealthy -> out of SRV: {time.monotonic() - t0:.2f}s", file=sys.stderr)

        # scaled to 0: the name stays, with no data (NODATA)
        self.ok("scale", f"{self.appname}/web=0")
        self.wait_for("no instances", lambda: not self.short(zone, "A"))
        out = self.dig(zone, "A")
        self.assertIn("status: NOERROR", out)
        self.assertIn("ANSWER: 0", out)

    def assert_nodata(self, name, qtype):
        out = self.dig(name, qtype)
        self.assertIn("status: NOERROR", out, f"{name} {qtype}:\n{out}")
        self.assertIn("ANSWER: 0,", out, f"{name} {qtype}:\n{out}")
        self.assertIn("AUTHORITY: 1,", out, f"{name} {qtype}:\n{out}")
        self.assertIn("\tSOA\t", out.split("AUTHORITY SECTION:")[1], f"{name} {qtype}:\n{out}")

    def test_nodata_without_healthy_instances(self):
        """A service that exists with no healthy instance answers NODATA with the SOA (docs/contract.md
        section 4), also once it is scaled to 0 and its containers are gone, and when every
        instance is unhealthy; the same for its SRV names and the names between them."""
        path = self.write("two.yaml", f"""\
app: {self.appname}
services:
  web:
    image: orch-demo:1
    replicas: 2
    ports: [{{name: http, container: 8080}}, {{name: admin, container: 9090}}]
    health: {{http: /healthz, port: http, interval: 300ms, timeout: 500ms, retries: 2}}
    update: {{stop_grace: 1s}}
  sick:
    image: orch-demo:1
    replicas: 2
    env: {{DEMO_UNHEALTHY: '1'}}
    ports: [{{name: http, container: 8080}}]
    health: {{http: /healthz, port: http, interval: 300ms, timeout: 500ms, retries: 2}}
    update: {{stop_grace: 1s}}
  crash:
    image: orch-demo:1
    replicas: 2
    command: ["/orch-demo", "crash"]
    ports: [{{name: http, container: 8080}}]
""")
        self.ok("apply", path)  # the daemon converges; sick never turns healthy
        web = f"web.{self.appname}.orch."
        sick = f"sick.{self.appname}.orch."
        crash = f"crash.{self.appname}.orch."
        self.wait_for("web's instances in the registry", lambda: self.short(web, "A"))

        def nodata_names():
            for svc in (web, sick, crash):
                for name, qtype in ((svc, "A"), (svc, "SRV"), (f"_http._tcp.{svc}", "SRV"),
                                    (f"_tcp.{svc}", "SRV")):
                    self.assert_nodata(name, qtype)
            self.assert_nodata(f"_admin._tcp.{web}", "SRV")
            self.assert_nodata(f"{self.appname}.orch.", "A")

        # scaled to 0: once every container is gone (several registry rebuilds later), the
        # names stay, with no data
        self.ok("scale", f"{self.appname}/web=0")
        self.wait_for("web's containers gone", lambda: not docker(
            "ps", "-aq", "--filter", f"label=orch.app={self.appname}", "--filter",
            "label=orch.service=web").split(), timeout=60)
        # sick's instances come and go (never healthy, replaced): sample for a while
        deadline = time.monotonic() + 8
        samples = 0
        while time.monotonic() < deadline:
            nodata_names()
            samples += 1
            time.sleep(0.3)
        print(f"\nNODATA checked {samples} times", file=sys.stderr)
        # an unknown name beside them is still NXDOMAIN
        self.assertIn("status: NXDOMAIN", self.dig(f"nosuch.{self.appname}.orch.", "A"))
        self.assertIn("status: NXDOMAIN", self.dig(f"_nosuch._tcp.{web}", "SRV"))

    def test_truncation_over_udp_full_over_tcp(self):
        self.ok("apply", self.spec(40), "--wait", "--timeout", "180s", timeout=300)
        name = f"_http._tcp.web.{self.appname}.orch."
        udp = self.dig("+ignore", "+noedns", name, "SRV")
        self.assertIn(" tc", udp.split("flags:")[1].split(";")[0])
        tcp = self.short(name, "SRV", "+tcp")
        self.assertEqual(len(tcp), 40)

    def test_no_failed_request_during_rollout(self):
        """A client that resolves the registry before each request sees no failure while
        every instance is replaced: instances leave the registry a TTL before they stop."""
        self.ok("apply", self.spec(3), "--wait", "--timeout", "60s")
        name = f"_http._tcp.web.{self.appname}.orch."
        stop = threading.Event()
        results = {"ok": 0, "failed": 0, "errors": []}

        def client():
            deadline = time.monotonic() + 120
            i = 0
            while not stop.is_set() and time.monotonic() < deadline:
                srv = self.short(name, "SRV")
                if not srv:
                    continue
                port = int(srv[i % len(srv)].split()[2])
                i += 1
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                        results["ok"] += r.status == 200
                except Exception as e:  # noqa: BLE001
                    results["failed"] += 1
                    results["errors"].append(str(e))
                time.sleep(0.02)

        t = threading.Thread(target=client, daemon=True)
        t.start()
        self.ok("apply", self.spec(3, image="orch-demo:2"), "--wait", "--timeout", "120s")
        time.sleep(1)
        stop.set()
        t.join()
        print(f"\nrequests during the rollout: {results['ok']} ok, {results['failed']} failed",
              file=sys.stderr)
        self.assertGreater(results["ok"], 20)
        self.assertEqual(results["failed"], 0, results["errors"][:5])
        revs = {c["Config"]["Labels"]["orch.revision"] for c in containers(self.appname)}
        self.assertEqual(revs, {"2"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
