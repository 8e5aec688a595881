"""Rolling deployments against the real engine (docs/contract.md sections 1 and 2, issue 5): the
availability floor and the surge bound hold at every sampled moment (with percentages),
recreate never runs two revisions at once, undo, and a rollout whose driving process was
SIGKILLed is finished by `orch rollout status` with no orphaned instance."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import HEALTHZ, ORCH, OrchTestCase, containers, service_yaml, spec_yaml  # noqa: E402


def spec(app, replicas, update, image="orch-demo:1"):
    return spec_yaml(app, service_yaml("web", image, replicas, health=HEALTHZ,
                                       update=f"stop_grace: 1s, deadline: 60s, {update}"))


class Sampler(threading.Thread):
    """Every ~100 ms (bounded): how many instances of the app exist (created or running) and
    how many answer /healthz with 200, and which revisions are alive."""

    def __init__(self, app, limit_s=120):
        super().__init__(daemon=True)
        self.app = app
        self.stop_at = time.monotonic() + limit_s
        self.halt = threading.Event()
        self.samples = []

    def run(self):
        while not self.halt.is_set() and time.monotonic() < self.stop_at:
            out = subprocess.run(
                ["docker", "ps", "-a", "--filter", f"label=orch.app={self.app}", "--format",
                 '{{.ID}} {{.State}} {{.Label "orch.revision"}} {{.Ports}}'],
                capture_output=True, text=True, timeout=30).stdout.split("\n")
            alive, healthy, revs = 0, 0, set()
            for line in filter(None, out):
                parts = line.split(" ", 3)
                state, rev = parts[1], parts[2]
                if state not in ("created", "running", "restarting", "paused"):
                    continue
                alive += 1
                revs.add(rev)
                ports = parts[3] if len(parts) > 3 else ""
                if state == "running" and "->" in ports:
                    hostport = ports.split("->")[0]
                    try:
                        with urllib.request.urlopen(f"http://{hostport}/healthz", timeout=1) as r:
                            healthy += r.status == 200
                    except Exception:
                        pass
            self.samples.append((alive, healthy, frozenset(revs)))
            time.sleep(0.1)


class RolloutTest(OrchTestCase):
    APP_PREFIX = "ro"

    def revisions(self, app):
        return [c["Config"]["Labels"]["orch.revision"] for c in containers(app)
                if c["State"]["Status"] == "running"]

    def rollout_sampled(self, app, path, *args):
        sampler = Sampler(app)
        sampler.start()
        try:
            r = self.orch("apply", path, *args)
        finally:
            sampler.halt.set()
            sampler.join()
        self.assertEqual(r.code, 0, r)
        self.assertGreater(len(sampler.samples), 5)
        return sampler.samples

    def test_rolling_update_keeps_floor_and_surge_bound(self):
        app = self.app("floor")
        # replicas 4: surge 25% rounds up to 1, unavailable 30% rounds down to 1
        path = self.write("s.yaml", spec(app, 4, 'max_surge: "25%", max_unavailable: "30%"'))
        self.ok("apply", path)
        samples = self.rollout_sampled(app, path, "--image", "web=orch-demo:2")
        print(f"\nsamples={len(samples)} max alive={max(s[0] for s in samples)} "
              f"min healthy={min(s[1] for s in samples)}", file=sys.stderr)
        self.assertLessEqual(max(s[0] for s in samples), 5, "at most replicas + max_surge")
        self.assertGreaterEqual(min(s[1] for s in samples), 3,
                                "at least replicas - max_unavailable healthy")
        self.assertEqual(set(self.revisions(app)), {"2"})
        self.assertEqual(len(containers(app)), 4)

    def test_surge_only_never_below_replicas(self):
        app = self.app("surge")
        path = self.write("s.yaml", spec(app, 3, "max_surge: 2, max_unavailable: 0"))
        self.ok("apply", path)
        samples = self.rollout_sampled(app, path, "--image", "web=orch-demo:2")
        self.assertLessEqual(max(s[0] for s in samples), 5)
        self.assertGreaterEqual(min(s[1] for s in samples), 3)

    def test_recreate_never_mixes_revisions(self):
        app = self.app("recreate")
        path = self.write("s.yaml", spec(app, 2, "strategy: recreate"))
        self.ok("apply", path)
        samples = self.rollout_sampled(app, path, "--image", "web=orch-demo:2")
        self.assertTrue(all(len(s[2]) <= 1 for s in samples), "old and new never run together")
        self.assertEqual(set(self.revisions(app)), {"2"})

    def test_undo(self):
        app = self.app("undo")
        path = self.write("s.yaml", spec(app, 2, "max_surge: 1"))
        self.ok("apply", path)
        self.ok("apply", path, "--image", "web=orch-demo:2")
        r = self.ok("rollout", "undo", f"{app}/web")
        self.assertIn("to revision 1", r.out)
        self.assertEqual(set(self.revisions(app)), {"1"})
        self.assertEqual(self.orch("diff", path).code, 0, "the file matches what runs again")
        r = self.ok("rollout", "undo", f"{app}/web", "--to-revision", "2")
        self.assertEqual(set(self.revisions(app)), {"2"})
        self.assertEqual(self.orch("rollout", "undo", f"{app}/web", "--to-revision", "9").code, 2)
        self.assertEqual(self.orch("rollout", "undo", f"{app}/web", "--to-revision", "2").code, 2)
        r = self.ok("rollout", "status", f"{app}/web")
        self.assertIn("complete", r.out)
        hist = self.ok("rollout", "history", f"{app}/web", "-o", "json").json()["revisions"]
        self.assertEqual({h["revision"]: h["state"] for h in hist}, {2: "active", 1: "superseded"})

    def test_sigkill_mid_rollout_then_resume(self):
        app = self.app("resume")
        path = self.write("s.yaml", spec(app, 3, "max_surge: 1, max_unavailable: 0"))
        self.ok("apply", path)
        proc = subprocess.Popen([ORCH, "--state", self.state, "apply", path, "--image",
                                 "web=orch-demo:2"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # kill it once the new revision is half-way in
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.revisions(app).count("2") < 1:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        mixed = sorted(self.revisions(app))
        r = self.orch("rollout", "status", f"{app}/web", "--timeout", "60s")
        self.assertEqual(r.code, 0, (mixed, r))
        self.assertEqual(sorted(self.revisions(app)), ["2", "2", "2"])
        self.assertEqual(len(containers(app)), 3, "no orphaned instance")
        hist = self.ok("rollout", "history", f"{app}/web", "-o", "json").json()["revisions"]
        self.assertEqual([(h["revision"], h["state"]) for h in hist],
                         [(2, "active"), (1, "superseded")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
