"""The state dir as operators and accidents treat it (issue 16): an emptied, missing or replaced
database is refused instead of silently becoming a new identity; `orch state backup`, `restore`
and `init` give the way back; stored rows are checked on read; every state file is private;
reads work on a full disk and on a read-only file system; a regular file is no state dir."""
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orchtest import ORCH, OrchTestCase, containers, docker  # noqa: E402

NOCONV = {"ORCH_NO_CONVERGE": "1"}

SPEC = """\
app: {app}
services:
  web:
    image: {image}
    replicas: {replicas}
    ports:
      - name: http
        container: 8080
"""


def engine_up():
    try:
        docker("version")
        return True
    except Exception:  # noqa: BLE001
        return False


class StateTest(OrchTestCase):
    APP_PREFIX = "st"

    def setUp(self):
        super().setUp()
        self.mounts = []
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.terminate()
            self.daemon.wait(timeout=30)
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        super().tearDown()

    def spec(self, app="s1", image="orch-demo:1", replicas=2, name="spec.yaml"):
        return self.write(name, SPEC.format(app=app, image=image, replicas=replicas))

    def db(self, state=None):
        return os.path.join(state or self.state, "orch.db")

    def state_id(self):
        with open(os.path.join(self.state, "state-id")) as f:
            return f.read().strip()

    # ---- item 8: --state naming a regular file

    def test_get_on_regular_file_is_an_error(self):
        path = self.write("plain-file", "x")
        for verb in (["get"], ["rollout", "history", "web"], ["status", "web"]):
            r = self.orch(*verb, "--state", path, state=False)
            self.assertEqual(r.code, 3, (verb, r))
            self.assertIn("not a directory", r.err)
            self.assertNotIn("No services", r.out)

    # ---- item 11: private files

    def test_state_files_are_private(self):
        os.makedirs(self.state, mode=0o700)
        self.ok("apply", self.spec(), env=NOCONV)
        for name in ("orch.db", "orch.db-wal", "orch.db-shm", "state-id"):
            p = os.path.join(self.state, name)
            if name.startswith("orch.db-") and not os.path.exists(p):
                continue
            mode = stat.S_IMODE(os.stat(p).st_mode)
            self.assertEqual(mode, 0o600, (name, oct(mode)))
        r = self.ok("get", env=NOCONV)
        self.assertNotIn("accessible", r.err)
        os.chmod(self.state, 0o755)
        r = self.ok("get", env=NOCONV)
        self.assertIn("accessible", r.err)
        self.assertEqual(r.err.count("accessible"), 1, r)

    # ---- item 1: an emptied, missing or replaced database

    def test_emptied_database_is_refused(self):
        self.ok("apply", self.spec(), env=NOCONV)
        sid = self.state_id()
        self.assertRegex(sid, r"^[0-9a-f]{16}$")
        with open(self.db(), "w"):
            pass
        for argv in (["get"], ["apply", self.spec()], ["rollout", "history", "web"]):
            r = self.orch(*argv, env=NOCONV)
            self.assertEqual(r.code, 3, (argv, r))
            self.assertIn("orch state restore", r.err)
            self.assertIn(f"orch state init --id {sid}", r.err)
        self.assertEqual(os.path.getsize(self.db()), 0, "a refused command wrote the database")
        os.unlink(self.db())
        r = self.orch("get")
        self.assertEqual(r.code, 3, r)
        self.assertIn("is missing", r.err)
        self.assertFalse(os.path.exists(self.db()))
        r = self.orch("apply", self.spec(), env=NOCONV)
        self.assertEqual(r.code, 3, r)
        self.assertFalse(os.path.exists(self.db()))

    def test_replaced_database_is_refused(self):
        self.ok("apply", self.spec(), env=NOCONV)
        other = os.path.join(self.tmp, "other")
        self.ok("apply", self.spec(app="s2"), "--state", other, state=False, env=NOCONV)
        os.unlink(self.db())
        shutil.copy(self.db(other), self.db())
        r = self.orch("get")
        self.assertEqual(r.code, 3, r)
        self.assertIn("state id", r.err)
        r = self.orch("apply", self.spec(), env=NOCONV)
        self.assertEqual(r.code, 3, r)

    def test_state_init_start_over(self):
        self.ok("apply", self.spec(), env=NOCONV)
        old = self.state_id()
        r = self.orch("state", "init")
        self.assertEqual(r.code, 3, r)  # a usable database is never replaced
        with open(self.db(), "w"):
            pass
        r = self.orch("state", "init")
        self.assertEqual(r.code, 2, r)  # must choose: --id or --new
        r = self.orch("state", "init", "--id", "nothex")
        self.assertEqual(r.code, 2, r)
        self.ok("state", "init", "--new")
        self.assertNotEqual(self.state_id(), old)
        self.assertIn("No services", self.ok("get").out)
        self.ok("apply", self.spec(), env=NOCONV)

    # ---- backup and restore

    def test_backup_and_restore(self):
        self.ok("apply", self.spec(replicas=2), env=NOCONV)
        sid = self.state_id()
        backup = os.path.join(self.tmp, "backup.db")
        self.ok("state", "backup", backup)
        self.assertEqual(stat.S_IMODE(os.stat(backup).st_mode), 0o600)
        r = self.orch("state", "backup", backup)
        self.assertEqual(r.code, 2, r)  # never overwrites
        self.ok("apply", self.spec(replicas=5, image="orch-demo:2"), env=NOCONV)
        self.ok("state", "restore", backup)
        svc = self.ok("get", "-o", "json", env=NOCONV).json()["services"]
        self.assertEqual([(s["service"], s["replicas"]["desired"], s["revision"]) for s in svc],
                         [("web", 2, 1)])
        self.assertEqual(self.state_id(), sid)
        # an emptied database comes back from the backup
        with open(self.db(), "w"):
            pass
        r = self.orch("get", env=NOCONV)
        self.assertEqual(r.code, 3, r)
        self.assertIn("is empty", r.err)
        self.ok("state", "restore", backup)
        self.assertEqual(len(self.ok("get", "-o", "json", env=NOCONV).json()["services"]), 1)
        # a backup of another state dir keeps its own id, and the id file follows it
        other = os.path.join(self.tmp, "other")
        self.ok("apply", self.spec(app="s2"), "--state", other, state=False, env=NOCONV)
        ob = os.path.join(self.tmp, "other.db")
        self.ok("state", "backup", ob, "--state", other, state=False)
        self.ok("state", "restore", ob)
        self.assertNotEqual(self.state_id(), sid)
        self.assertEqual(self.ok("get", "-o", "json", env=NOCONV).json()["services"][0]["app"],
                         "s2")

    def test_restore_refuses_bad_files_and_a_running_daemon(self):
        self.ok("apply", self.spec(), env=NOCONV)
        backup = os.path.join(self.tmp, "backup.db")
        self.ok("state", "backup", backup)
        junk = self.write("junk.db", "this is not a database\n" * 100)
        r = self.orch("state", "restore", junk)
        self.assertEqual(r.code, 2, r)
        foreign = os.path.join(self.tmp, "foreign.db")
        con = sqlite3.connect(foreign)
        con.execute("CREATE TABLE t (x)")
        con.commit()
        con.close()
        r = self.orch("state", "restore", foreign)
        self.assertEqual(r.code, 2, r)
        self.assertIn("not an orch", r.err)
        newer = os.path.join(self.tmp, "newer.db")
        shutil.copy(backup, newer)
        con = sqlite3.connect(newer)
        con.execute("PRAGMA user_version = 999")
        con.commit()
        con.close()
        r = self.orch("state", "restore", newer)
        self.assertEqual(r.code, 2, r)
        self.assertIn("999", r.err)
        r = self.orch("state", "restore", os.path.join(self.tmp, "missing.db"))
        self.assertEqual(r.code, 2, r)
        self.assertEqual(len(self.ok("get", "-o", "json", env=NOCONV).json()["services"]), 1)

        self.daemon = subprocess.Popen([ORCH, "--state", self.state, "daemon", "--dns", "off"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            r = self.orch("state", "restore", backup)
            if r.code == 3:
                break
            time.sleep(0.05)
        self.assertEqual(r.code, 3, r)
        self.assertIn("daemon", r.err)

    def test_backup_during_concurrent_writes(self):
        self.ok("apply", self.spec(), env=NOCONV)
        stop = threading.Event()
        errors = []

        def writer():
            i = 0
            while not stop.is_set():
                i += 1
                r = self.orch("apply", self.spec(replicas=1 + i % 7, name=f"w{i % 2}.yaml"),
                              env=NOCONV)
                if r.code != 0:
                    errors.append(r)

        t = threading.Thread(target=writer)
        t.start()
        try:
            for n in range(8):
                b = os.path.join(self.tmp, f"b{n}.db")
                self.ok("state", "backup", b)
                con = sqlite3.connect(b)
                self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                self.assertEqual(con.execute("SELECT count(*) FROM services").fetchone()[0], 1)
                con.close()
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [])
        self.ok("state", "restore", os.path.join(self.tmp, "b7.db"))
        self.ok("get", env=NOCONV)

    # ---- item 5: stored rows checked on read

    def tamper(self, sql):
        con = sqlite3.connect(self.db())
        con.executescript("DROP TRIGGER revisions_immutable;" + sql)
        con.close()

    def test_tampered_template_is_refused(self):
        self.ok("apply", self.spec(), env=NOCONV)
        self.ok("rollout", "history", "web")
        self.tamper("UPDATE revisions SET template_json ="
                    " replace(template_json, 'orch-demo:1', 'orch-demo:2');")
        for argv in (["rollout", "history", "web"], ["apply", self.spec()]):
            r = self.orch(*argv, env=NOCONV)
            self.assertEqual(r.code, 3, (argv, r))
            self.assertIn("s1/web revision 1", r.err)

    def test_garbage_fields_are_refused(self):
        self.ok("apply", self.spec(), env=NOCONV)
        cases = [
            ("created", "UPDATE revisions SET created_ms = 57000000000000;"),
            ("image", "UPDATE revisions SET image = 'orch-demo:1' || char(7) || 'x';"),
            ("image", "UPDATE revisions SET image = CAST(x'6f72ff63' AS TEXT);"),
        ]
        backup = os.path.join(self.tmp, "backup.db")
        self.ok("state", "backup", backup)
        for what, sql in cases:
            with self.subTest(what=what):
                self.ok("state", "restore", backup)
                self.tamper(sql)
                r = self.orch("rollout", "history", "web")
                self.assertEqual(r.code, 3, r)
                self.assertIn("s1/web revision 1", r.err)
                self.assertIn(what, r.err)

    # ---- item 12: a full disk and a read-only file system

    def mount(self, *args):
        target = os.path.join(self.tmp, f"mnt{len(self.mounts)}")
        os.makedirs(target, exist_ok=True)
        p = subprocess.run(["mount", *args, target], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest(f"cannot mount ({' '.join(args)}): {p.stderr.strip()}")
        self.mounts.append(target)
        return target

    def reads_work(self):
        r = self.ok("get", "-o", "json", env=NOCONV)
        self.assertEqual(r.json()["services"][0]["service"], "web")
        r = self.ok("rollout", "history", "web", "-o", "json")
        self.assertEqual(len(r.json()["revisions"]), 1)

    def test_reads_on_a_full_disk(self):
        mnt = self.mount("-t", "tmpfs", "-o", "size=2m", "tmpfs")
        self.state = os.path.join(mnt, "state")
        self.ok("apply", self.spec(), env=NOCONV)
        subprocess.run(["dd", "if=/dev/zero", f"of={mnt}/fill", "bs=64k"], capture_output=True)
        self.assertLess(shutil.disk_usage(mnt).free, 64 * 1024)
        self.reads_work()
        if engine_up():
            r = self.orch("status", "web")
            self.assertEqual(r.code, 0, r)
        r = self.orch("apply", self.spec(replicas=3), env=NOCONV)
        self.assertEqual(r.code, 3, r)
        self.assertIn("full", r.err)
        os.unlink(os.path.join(mnt, "fill"))
        self.reads_work()

    def test_reads_on_a_read_only_file_system(self):
        src = os.path.join(self.tmp, "src")
        self.state = os.path.join(src, "state")
        self.ok("apply", self.spec(), env=NOCONV)
        mnt = self.mount("--bind", src)
        p = subprocess.run(["mount", "-o", "remount,bind,ro", mnt], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest(f"cannot remount read-only: {p.stderr.strip()}")
        self.state = os.path.join(mnt, "state")
        self.reads_work()
        r = self.orch("apply", self.spec(replicas=3), env=NOCONV)
        self.assertEqual(r.code, 3, r)
        self.assertIn("read-only file system", r.err.lower())

    # ---- adoption of a lost state id (real engine)

    def test_adopt_lost_state_id(self):
        if not engine_up():
            self.skipTest("no Docker engine")
        app = self.app("adopt")
        path = self.spec(app=app, replicas=2)
        self.ok("apply", path, timeout=240)
        before = {c["Id"] for c in containers(app)}
        self.assertEqual(len(before), 2)
        sid = self.state_id()
        self.assertEqual({c["Config"]["Labels"]["orch.state"] for c in containers(app)}, {sid})
        with open(self.db(), "w"):
            pass
        r = self.orch("apply", path)
        self.assertEqual(r.code, 3, r)
        self.assertEqual({c["Id"] for c in containers(app)}, before)
        r = self.ok("state", "init", "--id", sid)
        self.assertIn(app, r.out + r.err)
        self.ok("apply", path, timeout=240)
        after = containers(app)
        self.assertEqual(len(after), 2, [c["Name"] for c in after])
        self.assertEqual({c["Config"]["Labels"]["orch.state"] for c in after}, {sid})
        # the next revision continues past the adopted containers' numbers
        revs = {int(c["Config"]["Labels"]["orch.revision"]) for c in after}
        self.assertEqual(revs, {2})
        self.ok("delete", "--app", app, timeout=240)
        self.assertEqual(containers(app), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
