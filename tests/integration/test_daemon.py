"""`orch daemon` against the real engine (docs/contract.md sections 2 and 3): self-healing of killed,
removed and unhealthy instances, CLI commands that record and return while a daemon runs,
apply --wait exit codes, one daemon per state dir, SIGTERM leaving containers running, a
SIGKILLed daemon's successor adopting its instances, depends_on order, an engine restart."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (HEALTHZ, ROOT, OrchTestCase, containers, docker,
                      http_get, service_yaml, spawn_daemon, stop_process, spec_yaml)  # noqa: E402


def spec(app, replicas=3, extra="", image="orch-demo:1", deadline="20s"):
    return spec_yaml(app, service_yaml("web", image, replicas, health=HEALTHZ,
                                       update=f"stop_grace: 1s, deadline: {deadline}",
                                       extra=extra))


class DaemonTest(OrchTestCase):
    APP_PREFIX = "dm"

    def setUp(self):
        super().setUp()
        self.daemon = None
        self.log = os.path.join(self.tmp, "daemon.log")

    def tearDown(self):
        self.stop_daemon()
        if getattr(self, "logf", None) is not None:
            self.logf.close()
        super().tearDown()

    def start_daemon(self):
        if getattr(self, "logf", None) is None:
            self.logf = open(self.log, "a")
        self.daemon = spawn_daemon(self.state, "--resync", "2s", log=self.logf)

    def stop_daemon(self, sig=signal.SIGTERM):
        if self.daemon is None:
            return None
        rc = stop_process(self.daemon, sig)
        self.daemon = None
        return rc

    def healthy(self, app, service="web"):
        r = self.orch("status", f"{app}/{service}", "-o", "json")
        if r.code != 0:
            return None
        return r.json()

    def wait_for(self, what, pred, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(0.3)
        with open(self.log) as f:
            log = f.read()[-3000:]
        self.fail(f"timed out waiting for {what}; last={last!r}\n--- daemon log\n{log}")

    def converged(self, app, n, revision=None):
        def pred():
            st = self.healthy(app)
            if not st or st["replicas"]["healthy"] != n or len(st["instances"]) != n:
                return None
            if revision and {i["revision"] for i in st["instances"]} != {revision}:
                return None
            return st
        return self.wait_for(f"{app} at {n} healthy", pred)

    def test_self_healing_and_record_only_cli(self):
        app = self.app("heal")
        self.start_daemon()
        path = self.write("s.yaml", spec(app, 3))
        t0 = time.monotonic()
        r = self.ok("apply", path)
        self.assertLess(time.monotonic() - t0, 5, "with a daemon, apply records and returns")
        self.assertIn("it converges", r.err)
        st = self.converged(app, 3)
        # Self-healing is about a service at rest: kills during the rollout would count as the new
        # revision crashing (three of them fail it), so wait until the daemon has completed it.
        self.wait_for("rollout complete", lambda: (self.healthy(app) or {}).get(
            "rollout", {}).get("state") == "complete")

        # killed: replaced
        victim = st["instances"][0]["id"]
        t0 = time.monotonic()
        docker("kill", victim)
        st = self.converged(app, 3)
        print(f"\nkill -> healthy replacement: {time.monotonic() - t0:.2f}s", file=sys.stderr)
        self.assertNotIn(victim, {i["id"] for i in st["instances"]})

        # removed: replaced
        victim = st["instances"][0]["id"]
        docker("rm", "-f", victim)
        st = self.converged(app, 3)
        self.assertNotIn(victim, {i["id"] for i in st["instances"]})

        # unhealthy: replaced (plain Docker never restarts an unhealthy container)
        victim = st["instances"][0]
        http_get(victim["endpoints"]["http"], "/admin/unhealthy")
        self.wait_for("unhealthy replaced", lambda: victim["id"] not in
                      {i["id"] for i in (self.healthy(app) or {"instances": []})["instances"]})
        self.converged(app, 3)

        # scale records and returns; the daemon converges
        self.ok("scale", f"{app}/web=1")
        self.converged(app, 1)

    def test_wait_exit_codes(self):
        app = self.app("wait")
        self.start_daemon()
        path = self.write("s.yaml", spec(app, 2))
        r = self.ok("apply", path, "--wait", "--timeout", "60s")
        self.assertIn(f"{app}: converged", r.out)
        self.converged(app, 2, revision=1)
        r = self.ok("apply", path, "--image", "web=orch-demo:2", "--wait", "--timeout", "60s")
        self.converged(app, 2, revision=2)
        # a revision that never turns healthy: the daemon rolls back, --wait exits 1
        bad = self.write("bad.yaml", spec(app, 2, deadline="4s",
                                          extra="    env: {DEMO_UNHEALTHY: '1'}\n"))
        r = self.orch("apply", bad, "--wait", "--timeout", "90s")
        self.assertEqual(r.code, 1, r)
        self.converged(app, 2, revision=2)
        # a timeout while the daemon still works: exit 4
        slow = self.write("slow.yaml", spec(app, 2, deadline="60s",
                                           extra="    env: {DEMO_UNHEALTHY: '1', X: '2'}\n"))
        r = self.orch("apply", slow, "--wait", "--timeout", "1s")
        self.assertEqual(r.code, 4, r)

    def test_one_daemon_per_state_dir_and_adoption(self):
        app = self.app("adopt")
        self.start_daemon()
        r = self.orch("daemon")
        self.assertEqual(r.code, 3, r)
        self.assertIn("another orch daemon", r.err)
        path = self.write("s.yaml", spec(app, 2))
        self.ok("apply", path)
        ids = {i["id"] for i in self.converged(app, 2)["instances"]}
        # SIGKILL: a new daemon adopts the instances without recreating them
        self.assertEqual(self.stop_daemon(signal.SIGKILL), -signal.SIGKILL)
        self.start_daemon()
        time.sleep(5)  # two resyncs
        self.assertEqual({i["id"] for i in self.converged(app, 2)["instances"]}, ids)
        # SIGTERM: clean exit, containers keep running
        self.assertEqual(self.stop_daemon(signal.SIGTERM), 0)
        running = [c for c in containers(app) if c["State"]["Status"] == "running"]
        self.assertEqual({c["Id"] for c in running}, ids)

    def test_depends_on_order(self):
        app = self.app("deps")
        self.start_daemon()
        text = f"""\
app: {app}
services:
  web:
    image: orch-demo:1
    ports: [{{name: http, container: 8080}}]
    depends_on: [api]
    update: {{stop_grace: 1s}}
  api:
    image: orch-demo:1
    ports: [{{name: http, container: 8080}}]
    env: {{DEMO_HEALTHY_AFTER: '2000'}}
    health: {{http: /healthz, interval: 300ms, timeout: 500ms, retries: 2, start_period: 5s}}
    update: {{stop_grace: 1s}}
"""
        self.ok("apply", self.write("s.yaml", text), "--wait", "--timeout", "60s")
        cs = containers(app)
        by = {c["Config"]["Labels"]["orch.service"]: c for c in cs}
        self.assertEqual(set(by), {"api", "web"})
        api_started = by["api"]["State"]["StartedAt"]
        web_created = by["web"]["Created"]
        # web was created only after api turned healthy, 2 s after it started
        self.assertGreater(web_created, api_started)
        from datetime import datetime
        def ts(s):
            return datetime.fromisoformat(s[:26].rstrip("Z"))
        self.assertGreaterEqual((ts(web_created) - ts(api_started)).total_seconds(), 1.5)

    @unittest.skipIf(os.environ.get("DOCKER_HOST"), "restarts only a local engine")
    def test_engine_restart(self):
        app = self.app("restart")
        self.start_daemon()
        self.ok("apply", self.write("s.yaml", spec(app, 2)))
        self.converged(app, 2)
        pid = int(open("/var/run/docker.pid").read().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            try:
                os.kill(pid, 0)
                time.sleep(0.1)
            except ProcessLookupError:
                break
        time.sleep(2)  # the daemon notices and backs off
        subprocess.run([os.path.join(ROOT, "scripts", "setup")], check=True,
                       env=dict(os.environ, ORCH_SETUP_SKIP="packages images"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
        self.assertIsNone(self.daemon.poll(), "the daemon survives the engine restart")
        # the containers were stopped with the engine (restart policy no): the daemon recreates
        self.converged(app, 2)
        with open(self.log) as f:
            self.assertIn("answers again", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
