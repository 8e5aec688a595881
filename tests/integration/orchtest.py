"""Shared helpers of the integration tests: build spec files, run the orch binary under test in
a private state dir, read its JSON output, talk to the engine, and remove every app a test made.
The binary comes from ORCH_BIN (set by ctest)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

ORCH = os.environ.get("ORCH_BIN", "orch")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_ID = f"{os.getpid() % 100000}"

# The fast probe most tests use: a verdict within about a second of a change.
HEALTHZ = "http: /healthz, interval: 300ms, timeout: 500ms, retries: 2"


def service_yaml(name, image="orch-demo:1", replicas=None, ports=(("http", 8080),), health=None,
                 update=None, extra=""):
    """One service of a spec: image, replicas, ports as (name, container port) pairs, health and
    update as the inside of a flow mapping ("stop_grace: 1s, deadline: 20s"), then `extra`, more
    lines of the service as written (indented four spaces)."""
    lines = [f"  {name}:", f"    image: {image}"]
    if replicas is not None:
        lines.append(f"    replicas: {replicas}")
    if ports:
        items = ", ".join(f"{{name: {n}, container: {c}}}" for n, c in ports)
        lines.append(f"    ports: [{items}]")
    if health:
        lines.append(f"    health: {{{health}}}")
    if update:
        lines.append(f"    update: {{{update}}}")
    return "\n".join(lines) + "\n" + extra


def spec_yaml(app, *services, version=None):
    """A spec file's text: the app and its services (each from service_yaml)."""
    head = f"version: {version}\n" if version is not None else ""
    return f"{head}app: {app}\nservices:\n" + "".join(services)


def docker(*args, check=True):
    p = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {p.stderr}")
    return p.stdout


def containers(app, all_states=True):
    """The containers carrying orch.app=APP, as docker inspect dicts."""
    ids = docker("ps", "-q", *(["-a"] if all_states else []), "--filter",
                 f"label=orch.app={app}").split()
    if not ids:
        return []
    return json.loads(docker("inspect", *ids))


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port nothing listens on now (TCP by default; socket.SOCK_DGRAM for UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_daemon(state, *args, log, env=None, wait_lock=True):
    """`orch --state STATE daemon ARGS...` in the background, stderr to the open file log. With
    wait_lock, returns once it holds the state dir's lock (or after 5 s) and a moment more. The
    HTTP API is off unless ARGS say --api: a test's daemon must not depend on port 8700 being
    free (another daemon on the machine, or a test running beside it)."""
    if "--api" not in args:
        args = (*args, "--api", "off")
    p = subprocess.Popen([ORCH, "--state", state, "daemon", *args], stdout=subprocess.DEVNULL,
                         stderr=log, env=dict(os.environ, **(env or {})))
    if wait_lock:
        for _ in range(100):
            if os.path.exists(os.path.join(state, "daemon.lock")):
                break
            time.sleep(0.05)
        time.sleep(0.3)
    else:
        time.sleep(0.5)
    return p


def stop_process(p, sig=signal.SIGTERM, timeout=30):
    """Sends sig to p and waits for it (SIGKILL after timeout seconds); its exit status."""
    p.send_signal(sig)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def http_get(endpoint, path="/"):
    with urllib.request.urlopen(f"http://{endpoint}{path}", timeout=5) as r:
        return r.read().decode()


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

    APP_PREFIX = "t"  # app names are PREFIX-NAME-RUNID, unique per test run

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="orch-test-")
        self.state = os.path.join(self.tmp, "state")
        self.apps = []

    def tearDown(self):
        for app in self.apps:
            self.remove_app(app)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def app(self, name):
        """A new app name, removed (containers, network, volumes) when the test ends."""
        app = f"{self.APP_PREFIX}-{name}-{RUN_ID}"
        self.apps.append(app)
        return app

    def remove_app(self, app):
        """orch delete --app, then whatever is left on the engine, even if orch failed."""
        self.orch("delete", "--app", app, "--volumes", timeout=180)
        for c in containers(app):
            docker("rm", "-f", c["Id"], check=False)
        docker("network", "rm", f"orch-{app}", check=False)

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
