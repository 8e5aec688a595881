"""The CLI against the state store only: apply records desired state and revisions, get, diff,
rollout history, exit codes, and invalid specs that change nothing (docs/contract.md sections 1, 2 and 5).
These tests need no Docker engine: they use `apply --dry-run`, `diff` and the store-reading verbs,
and `apply` with ORCH_NO_CONVERGE=1 which records the desired state without driving containers."""
import glob
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import ROOT, OrchTestCase, service_yaml, spec_yaml  # noqa: E402

SHOP = os.path.join(ROOT, "manifests", "examples", "shop.yaml")
NOCONV = {"ORCH_NO_CONVERGE": "1"}



class CliStoreTest(OrchTestCase):
    def spec(self, app="t1", image="orch-demo:1", replicas=2, name="spec.yaml"):
        return self.write(name, spec_yaml(app, service_yaml("web", image, replicas),
                                          service_yaml("worker", ports=()), version=1))

    def services(self):
        return {(s["app"], s["service"]): s for s in self.ok("get", "-o", "json").json()["services"]}

    def test_version_and_help(self):
        r = self.orch("version", state=False)
        self.assertEqual(r.code, 0, r)
        for lib in ("libcurl", "jansson", "libyaml", "openssl", "libuv", "sqlite"):
            self.assertIn(lib, r.out)
        for verb in ("apply", "diff", "get", "status", "scale", "rollout", "delete", "daemon",
                     "version"):
            r = self.orch(verb, "--help", state=False)
            self.assertEqual(r.code, 0, r)
            self.assertIn("Usage: orch " + verb, r.out)
        r = self.orch("--help", state=False)
        self.assertEqual(r.code, 0)
        self.assertIn("Exit codes", r.out)

    def test_unknown_verb_and_option(self):
        r = self.orch("aply", "x.yaml")
        self.assertEqual(r.code, 2, r)
        self.assertIn("did you mean 'apply'", r.err)
        r = self.orch("get", "--bogus")
        self.assertEqual(r.code, 2, r)
        r = self.orch("get", "-o", "yaml")
        self.assertEqual(r.code, 2, r)
        r = self.orch("apply")
        self.assertEqual(r.code, 2, r)
        r = self.orch("apply", "/nonexistent/spec.yaml")
        self.assertEqual(r.code, 2, r)
        self.assertIn("/nonexistent/spec.yaml", r.err)

    def test_apply_records_revisions(self):
        path = self.spec()
        r = self.ok("apply", path, env=NOCONV)
        self.assertIn("t1/web: created (revision 1, 2 replicas)", r.out)
        svcs = self.services()
        self.assertEqual(svcs[("t1", "web")]["revision"], 1)
        self.assertEqual(svcs[("t1", "web")]["replicas"]["desired"], 2)
        self.assertEqual(svcs[("t1", "worker")]["replicas"]["desired"], 1)

        # the same file again changes nothing
        r = self.ok("apply", path, env=NOCONV)
        self.assertIn("t1/web: unchanged", r.out)
        self.assertEqual(self.orch("diff", path).code, 0)
        hist = self.ok("rollout", "history", "web", "-o", "json").json()["revisions"]
        self.assertEqual([h["revision"] for h in hist], [1])

        # only replicas: scale in place, no revision
        path = self.spec(replicas=5)
        r = self.orch("diff", path)
        self.assertEqual(r.code, 1, r)
        self.assertIn("scale 2 -> 5", r.out)
        self.ok("apply", path, env=NOCONV)
        self.assertEqual(self.services()[("t1", "web")]["replicas"]["desired"], 5)
        hist = self.ok("rollout", "history", "t1/web", "-o", "json").json()["revisions"]
        self.assertEqual(len(hist), 1)

        # --image with -m: a new revision carrying the message
        r = self.orch("diff", path, "--image", "web=orch-demo:2")
        self.assertEqual(r.code, 1, r)
        self.assertIn('image: "orch-demo:1" => "orch-demo:2"', r.out)
        self.ok("apply", path, "--image", "web=orch-demo:2", "-m", "ci build 42", env=NOCONV)
        hist = self.ok("rollout", "history", "web", "-o", "json").json()["revisions"]
        self.assertEqual([h["revision"] for h in hist], [2, 1])
        self.assertEqual(hist[0]["image"], "orch-demo:2")
        self.assertEqual(hist[0]["message"], "ci build 42")
        self.assertRegex(hist[0]["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # the worker was untouched
        self.assertEqual(self.services()[("t1", "worker")]["revision"], 1)
        # without -m the command line is the message
        self.ok("apply", path, env=NOCONV)
        hist = self.ok("rollout", "history", "web", "-o", "json").json()["revisions"]
        self.assertEqual(hist[0]["revision"], 3)
        self.assertIn("orch apply", hist[0]["message"])
        table = self.ok("rollout", "history", "web").out
        self.assertIn("REVISION", table)

    def test_dry_run_and_prune(self):
        path = self.spec()
        r = self.orch("apply", path, "--dry-run")
        self.assertEqual(r.code, 1, r)
        self.assertIn("+ t1/web: create revision 1", r.out)
        self.assertEqual(self.services(), {})
        self.ok("apply", path, env=NOCONV)
        self.assertEqual(self.orch("apply", path, "--dry-run").code, 0)
        only_web = self.write("web.yaml", "app: t1\nservices:\n  web:\n    image: orch-demo:1\n"
                              "    replicas: 2\n    ports: [{name: http, container: 8080}]\n")
        r = self.orch("diff", only_web, "--prune")
        self.assertEqual(r.code, 1, r)
        self.assertIn("- t1/worker: delete", r.out)
        # without --prune the worker stays
        self.ok("apply", only_web, env=NOCONV)
        self.assertIn(("t1", "worker"), self.services())
        self.ok("apply", only_web, "--prune", env=NOCONV)
        self.assertNotIn(("t1", "worker"), self.services())
        self.assertIn(("t1", "web"), self.services())

    def test_revision_numbers_continue_after_delete(self):
        path = self.spec()
        self.ok("apply", path, env=NOCONV)
        self.ok("apply", path, "--image", "web=orch-demo:2", env=NOCONV)
        self.ok("delete", "t1/web", env=NOCONV)
        self.assertNotIn(("t1", "web"), self.services())
        r = self.orch("diff", path)
        self.assertEqual(r.code, 1, r)
        self.assertIn("+ t1/web: create revision 3", r.out)
        r = self.ok("apply", path, env=NOCONV)
        self.assertIn("t1/web: created (revision 3", r.out)

    def test_stdin_and_ambiguous_service(self):
        with open(self.spec(app="a1")) as f:
            text = f.read()
        self.ok("apply", "-", stdin=text, env=NOCONV)
        self.ok("apply", self.spec(app="a2", name="b.yaml"), env=NOCONV)
        r = self.orch("rollout", "history", "web")
        self.assertEqual(r.code, 2, r)
        self.assertIn("a1/web", r.err)
        self.assertIn("a2/web", r.err)
        self.ok("rollout", "history", "a2/web")
        r = self.orch("rollout", "history", "nosuch")
        self.assertEqual(r.code, 2, r)

    def test_bad_image_override_changes_nothing(self):
        path = self.spec()
        self.ok("apply", path, env=NOCONV)
        for bad in ("web", "nosuch=orch-demo:2", "web=Bad Image", "=x"):
            r = self.orch("apply", path, "--image", bad, env=NOCONV)
            self.assertEqual(r.code, 2, (bad, r))
        hist = self.ok("rollout", "history", "web", "-o", "json").json()["revisions"]
        self.assertEqual(len(hist), 1)

    def test_state_dir_unusable(self):
        blocker = self.write("not-a-dir", "x")
        r = self.orch("apply", self.spec(), "--state", os.path.join(blocker, "sub"), state=False,
                      env=NOCONV)
        self.assertEqual(r.code, 3, r)
        self.assertIn("not-a-dir", r.err)

    def test_issue16_smaller_inputs(self):
        """-o says the same everywhere, a device or a directory is not a spec, and a key too long
        for YAML is reported as such (issue 16, smaller)."""
        for verb in (("apply", "-o", "x", "f.yaml"), ("get", "-o", "x")):
            r = self.orch(*verb)
            self.assertEqual(r.code, 2, r)
            self.assertIn("-o must be table (or text) or json, not 'x'", r.err)
        for path, what in (("/dev/zero", "a device"), (self.tmp, "a directory")):
            r = self.orch("apply", path, env=NOCONV)
            self.assertEqual(r.code, 2, r)
            self.assertIn(f"spec file {path} is not a regular file ({what})", r.err)
        key = "K" * 100000
        path = self.write("long.yaml", spec_yaml("t1", service_yaml(
            "web", extra=f"    env:\n      {key}: v\n")))
        r = self.orch("apply", "--dry-run", path)
        self.assertEqual(r.code, 2, r)
        self.assertIn(f"{path}:7:7: error: key is too long: 100000 characters, the limit is 1024",
                      r.err)

    def test_delete_unknown_app(self):
        """delete --app of an app nobody knows is exit 2, like delete NOPE/web, and leaves no
        lock file (issue 16, smaller)."""
        self.ok("apply", self.spec(), env=NOCONV)
        for args in (("delete", "--app", "nope"), ("delete", "nope/web")):
            r = self.orch(*args, env=NOCONV)
            self.assertEqual(r.code, 2, r)
            self.assertNotIn("removed", r.out)
        self.assertFalse(os.path.exists(os.path.join(self.state, "locks", "nope.lock")))

    def test_invalid_corpus_changes_nothing(self):
        """Every invalid spec: exit 2, positioned gcc-style errors, nothing stored."""
        self.ok("apply", self.spec(), env=NOCONV)
        before = self.ok("get", "-o", "json").out
        files = sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "invalid", "*.yaml")))
        self.assertGreaterEqual(len(files), 30)
        for path in files:
            with self.subTest(spec=os.path.basename(path)):
                r = self.orch("apply", path, env=NOCONV, timeout=60)
                self.assertEqual(r.code, 2, r)
                pattern = re.escape(path) + r":\d+:\d+: error: \S"
                self.assertRegex(r.err, pattern)
                self.assertIn("nothing was changed", r.err)
                self.assertEqual(self.orch("diff", path).code, 2)
        self.assertEqual(self.ok("get", "-o", "json").out, before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
