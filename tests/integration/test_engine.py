"""orch against the real Docker engine (started by scripts/setup): converge, scale, prune,
delete, idempotent re-apply, foreign containers, missing images, crash loops, an unreachable
engine (docs/contract.md sections 2 and 3). Each test uses its own app name and removes what it made."""
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (HEALTHZ, RUN_ID, OrchTestCase, containers, docker,  # noqa: E402
                      http_get, service_yaml, spec_yaml)

def spec(app, web_replicas=3, web_image="orch-demo:1", extra="", web_extra=""):
    return spec_yaml(app, service_yaml("web", web_image, web_replicas,
                                       update="stop_grace: 2s, deadline: 30s",
                                       extra=web_extra)) + extra


WORKER = service_yaml("worker", replicas=2, ports=(), update="stop_grace: 1s")


class EngineTest(OrchTestCase):
    APP_PREFIX = "it"

    def running(self, app, service=None):
        out = []
        for c in containers(app):
            labels = c["Config"]["Labels"]
            if service and labels.get("orch.service") != service:
                continue
            if c["State"]["Status"] == "running":
                out.append(c)
        return out

    def test_converge_scale_reapply_and_status(self):
        app = self.app("conv")
        path = self.write("s.yaml", spec(app, 3))
        r = self.ok("apply", path)
        self.assertIn(f"{app}: converged", r.out)
        web = self.running(app, "web")
        self.assertEqual(len(web), 3)
        for c in web:
            labels = c["Config"]["Labels"]
            self.assertEqual(labels["orch.app"], app)
            self.assertEqual(labels["orch.service"], "web")
            self.assertEqual(labels["orch.revision"], "1")
            self.assertIn(f"orch-{app}", c["NetworkSettings"]["Networks"])
            self.assertIn("web", c["NetworkSettings"]["Networks"][f"orch-{app}"]["Aliases"])
            binding = c["HostConfig"]["PortBindings"]["8080/tcp"][0]
            self.assertEqual(binding["HostIp"], "127.0.0.1")

        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual(st["replicas"]["desired"], 3)
        self.assertEqual(st["replicas"]["running"], 3)
        self.assertEqual(st["replicas"]["updated"], 3)
        self.assertEqual(st["rollout"]["state"], "complete")
        self.assertEqual(len(st["instances"]), 3)
        ids = {c["Id"] for c in web}
        self.assertEqual({i["id"] for i in st["instances"]}, ids)
        for inst in st["instances"]:
            ep = inst["endpoints"]["http"]
            self.assertTrue(ep.startswith("127.0.0.1:"), ep)
            self.assertTrue(http_get(ep).startswith("orch-demo 1"))

        # the same file again changes nothing: the same containers stay
        r = self.ok("apply", path)
        self.assertIn("unchanged", r.out)
        self.assertEqual({c["Id"] for c in self.running(app, "web")}, ids)

        g = self.ok("get", "-o", "json").json()["services"]
        mine = [s for s in g if s["app"] == app]
        self.assertEqual(mine[0]["replicas"]["running"], 3)

        self.ok("scale", f"{app}/web=5")
        self.assertEqual(len(self.running(app, "web")), 5)
        self.ok("scale", f"{app}/web=1")
        self.assertEqual(len(self.running(app, "web")), 1)
        self.assertEqual(len(containers(app)), 1)  # scaled-down ones are removed, not left
        hist = self.ok("rollout", "history", f"{app}/web", "-o", "json").json()["revisions"]
        self.assertEqual(len(hist), 1)
        self.assertEqual(hist[0]["state"], "active")
        # bad scale arguments change nothing
        self.assertEqual(self.orch("scale", f"{app}/web=-1").code, 2)
        self.assertEqual(self.orch("scale", f"{app}/nosuch=2").code, 2)
        self.assertEqual(len(self.running(app, "web")), 1)

    def test_replaces_exited_instance_on_reapply(self):
        app = self.app("heal")
        path = self.write("s.yaml", spec(app, 2))
        self.ok("apply", path)
        victim = self.running(app, "web")[0]["Id"]
        docker("kill", victim)
        self.ok("apply", path)
        web = self.running(app, "web")
        self.assertEqual(len(web), 2)
        self.assertNotIn(victim, {c["Id"] for c in web})
        self.assertEqual(len(containers(app)), 2)  # the dead one was removed

    def test_prune_and_delete(self):
        app = self.app("prune")
        both = self.write("both.yaml", spec(app, 1, extra=WORKER))
        self.ok("apply", both)
        self.assertEqual(len(self.running(app, "worker")), 2)
        only_web = self.write("web.yaml", spec(app, 1))
        self.ok("apply", only_web)  # without --prune the worker stays
        self.assertEqual(len(self.running(app, "worker")), 2)
        self.ok("apply", only_web, "--prune")
        self.assertEqual(len(self.running(app, "worker")), 0)
        self.assertEqual(len(self.running(app, "web")), 1)

        self.ok("apply", both)
        self.ok("delete", f"{app}/worker")
        self.assertEqual(self.running(app, "worker"), [])
        self.assertEqual(len(self.running(app, "web")), 1)
        self.ok("delete", "-f", only_web)
        self.assertEqual(containers(app), [])
        self.assertEqual(docker("network", "ls", "-q", "--filter", f"name=^orch-{app}$").strip(),
                         "")
        self.assertEqual(self.ok("get", "-o", "json").json()["services"], [])

    def test_foreign_container_is_never_touched(self):
        app = self.app("foreign")
        name = f"foreign-{RUN_ID}"
        docker("run", "-d", "--name", name, "--label", "orch.service=web",
               "--label", f"orch.revision=1", "orch-demo:1")
        try:
            path = self.write("s.yaml", spec(app, 2))
            self.ok("apply", path)
            self.ok("scale", f"{app}/web=0")
            self.ok("delete", "--app", app)
            state = json.loads(docker("inspect", name))[0]["State"]["Status"]
            self.assertEqual(state, "running")
        finally:
            docker("rm", "-f", name, check=False)

    def test_missing_image(self):
        app = self.app("noimg")
        # first revision: nothing to roll back to
        path = self.write("s.yaml", spec(app, 2, web_image="orch-nonexistent:1"))
        r = self.orch("apply", path)
        self.assertEqual(r.code, 5, r)
        self.assertIn("orch-nonexistent:1", r.err)
        self.assertEqual(containers(app), [])
        self.assertEqual(docker("images", "-q", "orch-nonexistent").strip(), "")
        hist = self.ok("rollout", "history", f"{app}/web", "-o", "json").json()["revisions"]
        self.assertEqual(hist[0]["state"], "failed")

        # the image appears later: the same file converges, and that revision becomes the
        # active (good) one although no new rollout was made for it
        late = self.app("late")
        image = f"orch-late-{RUN_ID}:1"
        lpath = self.write("late.yaml", spec(late, 1, web_image=image))
        self.assertEqual(self.orch("apply", lpath).code, 5)
        docker("tag", "orch-demo:1", image)
        try:
            self.ok("apply", lpath)
            hist = self.ok("rollout", "history", f"{late}/web", "-o", "json").json()["revisions"]
            self.assertEqual([h["state"] for h in hist], ["active"])
        finally:
            self.remove_app(late)
            docker("rmi", image, check=False)

        # a good revision, then a missing image: rolled back, the good one keeps serving
        good = self.write("good.yaml", spec(app, 2))
        self.ok("apply", good)
        before = {c["Id"] for c in self.running(app, "web")}
        self.assertEqual(len(before), 2)
        r = self.orch("apply", good, "--image", "web=orch-nonexistent:2")
        self.assertEqual(r.code, 1, r)
        self.assertIn("orch-nonexistent:2", r.err)
        self.assertEqual({c["Id"] for c in self.running(app, "web")}, before)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual(st["rollout"]["state"], "rolled_back")
        hist = self.ok("rollout", "history", f"{app}/web", "-o", "json").json()["revisions"]
        self.assertEqual([h["state"] for h in hist[:2]], ["failed", "active"])

    def test_crash_loop_rolls_back(self):
        app = self.app("crash")
        good = self.write("good.yaml", spec(app, 1))
        self.ok("apply", good)
        bad = self.write("bad.yaml", spec(app, 1, web_extra='    command: ["crash", "3"]\n'))
        t0 = time.monotonic()
        r = self.orch("apply", bad)
        self.assertEqual(r.code, 1, r)
        self.assertIn("crash loop", r.err)
        self.assertLess(time.monotonic() - t0, 60)
        web = self.running(app, "web")
        self.assertEqual(len(web), 1)
        self.assertEqual(web[0]["Config"]["Labels"]["orch.revision"], "1")
        # the backoff is in the service's events
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        kinds = [e["kind"] for e in st["events"]]
        self.assertIn("backoff", kinds)
        self.assertIn("rollout-failed", kinds)
        self.assertIn("Events:", self.ok("status", f"{app}/web").out)

    def test_refused_start_rolls_back_and_diff_is_clean(self):
        """A revision whose instances the engine cannot start (no such executable) is a crash
        loop too; after the rollback the good file diffs clean."""
        app = self.app("refused")
        good = self.write("good.yaml", spec(app, 2))
        self.ok("apply", good)
        before = {c["Id"] for c in self.running(app, "web")}
        bad = self.write("bad.yaml", spec(app, 2, web_extra='    entrypoint: ["/no/such/binary"]\n'))
        r = self.orch("apply", bad)
        self.assertEqual(r.code, 1, r)
        self.assertEqual({c["Id"] for c in self.running(app, "web")}, before)
        # the good file is what serves again: nothing to change
        r = self.orch("diff", good)
        self.assertEqual(r.code, 0, r)
        hist = self.ok("rollout", "history", f"{app}/web", "-o", "json").json()["revisions"]
        self.assertEqual([h["state"] for h in hist], ["failed", "active"])

    def test_crash_loop_without_rollout_gives_up(self):
        """A service that only has to be kept running (no new revision) and keeps crashing
        ends with exit 5 instead of retrying forever."""
        app = self.app("giveup")
        path = self.write("s.yaml", spec(app, 1, web_extra='    command: ["crash", "1"]\n'))
        r = self.orch("apply", path)
        self.assertEqual(r.code, 5, r)
        t0 = time.monotonic()
        r = self.orch("scale", f"{app}/web=2", timeout=120)
        self.assertEqual(r.code, 5, r)
        self.assertIn("giving up", r.err)
        self.assertLess(time.monotonic() - t0, 90)

    HEALTH = f"    health: {{{HEALTHZ}}}\n"

    def test_health_gates_apply_and_unhealthy_revision_rolls_back(self):
        app = self.app("health")
        good = self.write("good.yaml", spec(app, 2, web_extra=self.HEALTH))
        self.ok("apply", good)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual([i["health"] for i in st["instances"]], ["healthy", "healthy"])
        self.assertEqual(st["replicas"]["healthy"], 2)
        before = {c["Id"] for c in self.running(app, "web")}
        # a revision whose instances run but never pass their probe: the deadline fails it
        bad = self.write("bad.yaml", spec(app, 2, web_extra=self.HEALTH +
                                          "    env: {DEMO_UNHEALTHY: '1'}\n"
                                          ).replace("deadline: 30s", "deadline: 5s"))
        r = self.orch("apply", bad)
        self.assertEqual(r.code, 1, r)
        # never healthy: replaced until the crash limit, or stuck until the deadline
        self.assertRegex(r.err, "no progress|crash loop")
        self.assertEqual({c["Id"] for c in self.running(app, "web")}, before)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual(st["replicas"]["healthy"], 2)

    def test_unhealthy_instance_is_replaced(self):
        app = self.app("unhealthy")
        path = self.write("s.yaml", spec(app, 2, web_extra=self.HEALTH))
        self.ok("apply", path)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        victim = st["instances"][0]
        http_get(victim["endpoints"]["http"], "/admin/unhealthy")
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        by_id = {i["id"]: i["health"] for i in st["instances"]}
        self.assertEqual(by_id[victim["id"]], "unhealthy")
        self.ok("apply", path)
        ids = {c["Id"] for c in self.running(app, "web")}
        self.assertEqual(len(ids), 2)
        self.assertNotIn(victim["id"], ids)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual([i["health"] for i in st["instances"]], ["healthy", "healthy"])

    def test_exec_probe(self):
        app = self.app("exec")
        path = self.write("s.yaml", spec(app, 1, web_extra='    health: {exec: ["/orch-demo", '
                                         '"probe"], interval: 300ms, timeout: 2s}\n'))
        self.ok("apply", path)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual(st["instances"][0]["health"], "healthy")

    def test_image_update_replaces_instances(self):
        app = self.app("update")
        path = self.write("s.yaml", spec(app, 3))
        self.ok("apply", path)
        r = self.ok("apply", path, "--image", "web=orch-demo:2", "-m", "deploy v2")
        self.assertIn("revision 2", r.out)
        web = self.running(app, "web")
        self.assertEqual(len(web), 3)
        self.assertEqual({c["Config"]["Labels"]["orch.revision"] for c in web}, {"2"})
        self.assertEqual(len(containers(app)), 3)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        for inst in st["instances"]:
            self.assertTrue(http_get(inst["endpoints"]["http"]).startswith("orch-demo 2"))
        hist = self.ok("rollout", "history", f"{app}/web", "-o", "json").json()["revisions"]
        self.assertEqual([(h["revision"], h["state"]) for h in hist],
                         [(2, "active"), (1, "superseded")])
        self.assertEqual(hist[0]["message"], "deploy v2")

    def test_apply_json_output(self):
        app = self.app("json")
        path = self.write("s.yaml", spec(app, 1))
        r = self.ok("apply", path, "-o", "json")
        out = json.loads(r.out)
        self.assertEqual((out["app"], out["outcome"], out["exit_code"]), (app, "converged", 0))
        self.assertEqual(out["services"], [{"service": "web", "change": "created",
                                            "from_revision": 0, "revision": 1, "replicas": 1}])
        r = self.orch("apply", path, "-o", "json", "--image", "web=orch-nonexistent:3")
        self.assertEqual(r.code, 1, r)
        out = json.loads(r.out)
        self.assertEqual((out["outcome"], out["exit_code"]), ("rolled_back", 1))
        self.assertEqual(out["services"][0]["change"], "revision")

    def test_pull_only_from_a_configured_registry(self):
        """A missing image is pulled only from a registry named in ORCH_REGISTRY: here a local
        registry (Debian's docker-registry) on 127.0.0.1."""
        import socket
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        root = os.path.join(self.tmp, "registry")
        cfg = self.write("registry.yml", f"""\
version: 0.1
storage:
  filesystem: {{rootdirectory: {root}}}
http:
  addr: 127.0.0.1:{port}
""")
        reg = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        image = f"127.0.0.1:{port}/orch-demo:pulltest{RUN_ID}"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                    break
                except Exception:
                    time.sleep(0.1)
            docker("tag", "orch-demo:1", image)
            docker("push", image)
            docker("rmi", image)
            # not configured: nothing is pulled, the error names the image
            app = self.app("nopull")
            path = self.write("a.yaml", spec(app, 1, web_image=image))
            r = self.orch("apply", path)
            self.assertEqual(r.code, 5, r)
            self.assertIn(image, r.err)
            self.assertIn("ORCH_REGISTRY", r.err)
            self.assertEqual(docker("images", "-q", image).strip(), "")
            # configured: pulled, then it runs
            app = self.app("pull")
            path = self.write("b.yaml", spec(app, 1, web_image=image))
            r = self.orch("apply", path, env={"ORCH_REGISTRY": f"127.0.0.1:{port}"})
            self.assertEqual(r.code, 0, r)
            self.assertIn("pulling", r.err)
            self.assertEqual(len(self.running(app, "web")), 1)
        finally:
            reg.terminate()
            reg.wait(timeout=30)
            docker("rmi", "-f", image, check=False)

    def test_unreachable_engine(self):
        app = self.app("noengine")
        path = self.write("s.yaml", spec(app, 1))
        for host in ("unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"):
            r = self.orch("apply", path, env={"DOCKER_HOST": host}, timeout=60)
            self.assertEqual(r.code, 3, r)
            self.assertIn("Docker engine", r.err)
        # nothing was stored
        self.assertEqual(self.ok("get", "-o", "json").json()["services"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
