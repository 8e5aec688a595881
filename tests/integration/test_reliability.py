"""What operators and accidents do to a running orch (issue 16), against the real engine: a
publish address that is not an IP literal, duplicate app networks, an app network removed by
hand, a delete interrupted by SIGKILL. Each test reproduces the accident, then checks the
recovery: exact counts, one network, nothing left behind."""
import http.client
import json
import os
import socket
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (HEALTHZ, ORCH, OrchTestCase, containers, docker, http_get,
                      service_yaml, spawn_daemon, stop_process, spec_yaml)  # noqa: E402


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


def count(app):
    """How many containers carry orch.app=APP (no inspect: they may go meanwhile)."""
    return len(docker("ps", "-aq", "--filter", f"label=orch.app={app}").split())


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def create_duplicate_network(app, labels):
    """POST /networks/create with CheckDuplicate off: what an interrupted create (or two state
    dirs applying one app at once) leaves behind. Returns the new network's id."""
    conn = _UnixConnection("/var/run/docker.sock")
    body = json.dumps({"Name": f"orch-{app}", "Driver": "bridge", "CheckDuplicate": False,
                       "Labels": labels})
    conn.request("POST", "/v1.41/networks/create", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 201:
        raise unittest.SkipTest(f"the engine refuses duplicate network names ({r.status})")
    return json.loads(data)["Id"]


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
        self.logf = open(self.log, "a")
        self.daemon = spawn_daemon(self.state, "--dns", "off", "--resync", "2s", log=self.logf,
                                   env=env)

    def stop_daemon(self):
        if self.daemon is None:
            return
        stop_process(self.daemon)
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


    # ---- item 2: duplicate app networks ----

    def state_id(self):
        with open(os.path.join(self.state, "state-id")) as f:
            return f.read().strip()

    def assert_app(self, app, replicas, nets=1):
        c = [x for x in containers(app) if x["State"]["Status"] == "running"]
        self.assertEqual(len(c), replicas, [x["Name"] for x in containers(app)])
        self.assertEqual(len(containers(app)), replicas)
        self.assertEqual(len(networks(app)), nets)
        sid = self.state_id()
        for x in c:
            self.assertEqual(x["Config"]["Labels"]["orch.state"], sid)
            self.assertEqual(list(x["NetworkSettings"]["Networks"]), [f"orch-{app}"])

    def test_duplicate_networks_are_repaired(self):
        app = self.app("dup")
        path = self.write("s.yaml", spec(app, replicas=2))
        # an empty database gets its id at the first write: record, then make the duplicates an
        # apply killed while creating the network leaves (both labelled as its own)
        self.ok("apply", path, env={"ORCH_NO_CONVERGE": "1"})
        labels = {"orch.app": app, "orch.state": self.state_id()}
        create_duplicate_network(app, labels)
        create_duplicate_network(app, labels)
        self.assertEqual(len(networks(app)), 2)
        r = self.ok("apply", path)
        self.assertNotIn("crash loop", r.err + r.out)
        self.assert_app(app, 2)
        # an empty duplicate beside a network with instances: scale works, the empty one goes
        create_duplicate_network(app, labels)
        self.assertEqual(len(networks(app)), 2)
        self.ok("scale", f"{app}/web=3")
        self.assert_app(app, 3)
        for x in containers(app):
            port = x["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
            self.assertIn("orch-demo", http_get(f"127.0.0.1:{port}", "/"))
        # and delete --app removes every network of the app's name that is its own
        create_duplicate_network(app, labels)
        self.ok("delete", "--app", app)
        self.assertEqual(containers(app), [])
        self.assertEqual(networks(app), [])

    def test_foreign_duplicate_is_named_not_a_crash_loop(self):
        app = self.app("dupf")
        path = self.write("s.yaml", spec(app, replicas=1))
        self.ok("apply", path)
        # a network of the same name orch did not make for this state dir: never removed
        other = create_duplicate_network(app, {"orch.app": app})
        try:
            r = self.orch("scale", f"{app}/web=2")
            self.assertEqual(r.code, 5, r)
            self.assertIn("ambiguous", r.err)
            self.assertIn(other[:12], r.err)
            self.assertNotIn("crash loop", r.err + r.out)
            self.assertIn(other, networks(app))
        finally:
            docker("network", "rm", other, check=False)
        self.ok("scale", f"{app}/web=2")
        self.assert_app(app, 2)


    # ---- item 3: the app network removed by hand ----

    def remove_network_by_hand(self, app, daemon=False):
        """docker network disconnect of every instance, then docker network rm (again if a
        daemon attached a replacement meanwhile)."""
        net = f"orch-{app}"
        for _ in range(10):
            info = json.loads(docker("network", "inspect", net))[0]
            for cid in info.get("Containers") or {}:
                docker("network", "disconnect", "-f", net, cid, check=False)
            if subprocess.run(["docker", "network", "rm", net], capture_output=True).returncode == 0:
                break
        else:
            # a daemon replaced the instances on it faster than they could be disconnected:
            # healed before the network went
            self.assertTrue(daemon, f"could not remove {net}")
        if not daemon:  # a daemon may have made it again already
            self.assertEqual(networks(app), [])

    def assert_serving(self, app, replicas):
        self.assert_app(app, replicas)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual(st["replicas"]["healthy"], replicas, st)
        for inst in st["instances"]:
            self.assertIn("orch-demo", http_get(inst["endpoints"]["http"], "/"))

    def test_network_removed_by_hand_embedded(self):
        app = self.app("netrm")
        path = self.write("s.yaml", spec(app, replicas=2))
        self.ok("apply", path)
        self.assert_serving(app, 2)
        self.remove_network_by_hand(app)
        # no endpoint, so not healthy, whatever the last probe said
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual(st["replicas"]["healthy"], 0, st)
        self.assertTrue(all(i["health"] != "healthy" for i in st["instances"]), st)
        g = self.ok("get", "-o", "json").json()
        row = [x for x in g["services"] if x["app"] == app][0]
        self.assertEqual(row["replicas"]["healthy"], 0, g)
        # applying again recreates the network and replaces the instances that lost it
        r = self.orch("apply", path, timeout=120)
        self.assertEqual(r.code, 0, r)
        self.assert_serving(app, 2)
        # and scale does too
        self.remove_network_by_hand(app)
        r = self.orch("scale", f"{app}/web=3", timeout=120)
        self.assertEqual(r.code, 0, r)
        self.assert_serving(app, 3)

    def test_network_removed_by_hand_daemon(self):
        app = self.app("netrmd")
        path = self.write("s.yaml", spec(app, replicas=2))
        self.ok("apply", path)
        self.start_daemon()
        self.remove_network_by_hand(app, daemon=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                self.assert_serving(app, 2)
                break
            except AssertionError:
                continue
        else:
            self.fail("the daemon did not heal the network\n" + self.daemon_log())
        self.assert_serving(app, 2)


    # ---- item 4: a delete interrupted ----

    def get_rows(self, app):
        g = self.ok("get", "-o", "json").json()
        return [x for x in g["services"] if x["app"] == app]

    def test_interrupted_delete_stays_visible_and_is_finished(self):
        app = self.app("del")
        path = self.write("s.yaml", spec_yaml(app, service_yaml("web", "orch-demo:1", 3),
                                              service_yaml("api", "orch-demo:1", 2)))
        self.ok("apply", path)
        self.assertEqual(len(containers(app)), 5)
        # what a SIGKILL right after the delete committed leaves: recorded, nothing removed
        self.ok("delete", "--app", app, env={"ORCH_NO_CONVERGE": "1"})
        self.assertEqual(len(containers(app)), 5)
        rows = self.get_rows(app)
        self.assertEqual(sorted(r["service"] for r in rows), ["api", "web"], rows)
        for r in rows:
            self.assertEqual(r["rollout"]["state"], "deleting", r)
        self.assertEqual(sum(r["replicas"]["running"] for r in rows), 5, rows)
        self.assertIn("deleting", self.ok("get").out)
        # the next delete --app finishes it
        self.ok("delete", "--app", app)
        self.assertEqual(containers(app), [])
        self.assertEqual(networks(app), [])
        self.assertEqual(self.get_rows(app), [])

    def test_killed_delete_is_finished_by_the_next_command(self):
        app = self.app("delk")
        path = self.write("s.yaml", spec_yaml(app, service_yaml("web", "orch-demo:1", 5)))
        self.ok("apply", path)
        p = subprocess.Popen([ORCH, "--state", self.state, "delete", "--app", app],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.4)
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = len(containers(app))
        if left:
            rows = self.get_rows(app)
            self.assertTrue(rows and all(r["rollout"]["state"] == "deleting" for r in rows), rows)
        self.ok("delete", "--app", app)
        self.assertEqual(containers(app), [])
        self.assertEqual(networks(app), [])
        self.assertEqual(self.get_rows(app), [])

    def test_interrupted_delete_is_finished_by_a_daemon(self):
        app = self.app("deld")
        path = self.write("s.yaml", spec_yaml(app, service_yaml("web", "orch-demo:1", 3)))
        self.ok("apply", path)
        self.ok("delete", "--app", app, env={"ORCH_NO_CONVERGE": "1"})
        self.assertEqual(len(containers(app)), 3)
        self.start_daemon()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (count(app) or networks(app)
                                               or self.get_rows(app)):
            time.sleep(0.5)
        self.assertEqual(containers(app), [], self.daemon_log())
        self.assertEqual(networks(app), [], self.daemon_log())
        self.assertEqual(self.get_rows(app), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
