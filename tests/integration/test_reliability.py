"""What operators and accidents do to a running orch (issue 16), against the real engine: a
publish address that is not an IP literal, duplicate app networks, an app network removed by
hand, a delete interrupted by SIGKILL. Each test reproduces the accident, then checks the
recovery: exact counts, one network, nothing left behind."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (HEALTHZ, ORCH, OrchTestCase, containers, docker,  # noqa: E402
                      http_get, service_yaml, spec_yaml)


def spec(app, replicas=2, image="orch-demo:1"):
    return spec_yaml(app, service_yaml("web", image, replicas, health=HEALTHZ,
                                       update="stop_grace: 1s, deadline: 30s"))


def networks(app):
    """The ids of every network called exactly orch-APP."""
    out = docker("network", "ls", "-q", "--no-trunc", "--filter", f"name=orch-{app}")
    ids = out.split()
    if not ids:
        return []
    found = json.loads(docker("network", "inspect", *ids))
    return [n["Id"] for n in found if n["Name"] == f"orch-{app}"]


class ReliabilityTest(OrchTestCase):
    APP_PREFIX = "rl"

    def setUp(self):
        super().setUp()
        self.daemon = None
        self.log = os.path.join(self.tmp, "daemon.log")

    def tearDown(self):
        self.stop_daemon()
        super().tearDown()

    def start_daemon(self, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.logf = open(self.log, "a")
        self.daemon = subprocess.Popen([ORCH, "--state", self.state, "daemon", "--dns", "off",
                                        "--resync", "2s"], stdout=subprocess.DEVNULL,
                                       stderr=self.logf, env=e)
        for _ in range(100):
            if os.path.exists(os.path.join(self.state, "daemon.lock")):
                break
            time.sleep(0.05)
        time.sleep(0.3)

    def stop_daemon(self):
        if self.daemon is None:
            return
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        self.daemon = None
        self.logf.close()

    def daemon_log(self):
        with open(self.log) as f:
            return f.read()[-4000:]

    # ---- item 6: ORCH_PUBLISH_ADDRESS ----

    def test_publish_address_must_be_an_ip_literal(self):
        app = self.app("pub")
        path = self.write("s.yaml", spec(app, replicas=1))
        for bad in ("localhost", "127.0.0.l", "999.1.1.1"):
            r = self.orch("apply", path, env={"ORCH_PUBLISH_ADDRESS": bad})
            self.assertEqual(r.code, 2, r)
            self.assertIn(f"'{bad}'", r.err)
            self.assertEqual(containers(app), [])
            self.assertEqual(networks(app), [])
        r = self.orch("get")
        self.assertEqual(r.code, 0, r)
        self.assertNotIn(app, r.out)
        # the daemon refuses to start with it too
        p = subprocess.run([ORCH, "--state", self.state, "daemon", "--dns", "off"],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, ORCH_PUBLISH_ADDRESS="localhost"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("'localhost'", p.stderr)
        # literals are fine, v4 and v6
        self.ok("apply", path, env={"ORCH_PUBLISH_ADDRESS": "127.0.0.1"})
        c = containers(app)
        self.assertEqual(len(c), 1)
        binds = c[0]["HostConfig"]["PortBindings"]["8080/tcp"]
        self.assertEqual([b["HostIp"] for b in binds], ["127.0.0.1"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
