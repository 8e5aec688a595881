"""Shared helpers of the integration tests: run the orch binary under test in a private state
dir and read its JSON output. The binary comes from ORCH_BIN (set by ctest)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

ORCH = os.environ.get("ORCH_BIN", "orch")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


class OrchTestCase(unittest.TestCase):
    """Each test gets a fresh state dir and a scratch folder for spec files."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="orch-test-")
        self.state = os.path.join(self.tmp, "state")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def orch(self, *args, stdin=None, env=None, timeout=300, state=True):
        argv = [ORCH] + list(args)
        if state:
            argv += ["--state", self.state]
        e = dict(os.environ)
        if env:
            e.update(env)
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=e,
                              timeout=timeout)
        return Result(proc)

    def ok(self, *args, **kw):
        r = self.orch(*args, **kw)
        self.assertEqual(r.code, 0, r)
        return r

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path
