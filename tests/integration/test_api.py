"""The HTTP API (docs/contract.md section 6) against orch-api-testd, the API server on its own loop over a
private state dir, changes recorded only (ORCH_NO_CONVERGE=1), orch tokens read from a file
(the store keeps no tokens yet; `orch daemon --api` is not wired yet). Needs no Docker engine:
reads show the desired state and counts of 0.

Covers every route with and without a credential, role x route 403s, app scopes, JWTs (valid,
expired, not yet valid, wrong aud/iss, forged, alg none, HS256 with the RSA public key, unknown
kid), TLS with a wrong CA, mTLS identity, 413, 431, a slow client cut off, SSE resume, If-Match
412 with concurrent writers, 422 with positioned errors, graceful shutdown."""
import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTD = os.environ.get("ORCH_API_TESTD", os.path.join(ROOT, "build", "api", "orch-api-testd"))
ISS = "https://issuer.test"
AUD = "https://orch.test"

SPEC = """\
app: {app}
services:
  web:
    image: {image}
    replicas: {replicas}
    ports: [{{name: http, container: 8080}}]
  worker:
    image: orch-demo:1
"""


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token():
    return f"orch_{secrets.token_hex(6)}_{b64u(secrets.token_bytes(32))}"


class Keys:
    """An RSA key for the JWT issuer, a CA with a server and a client certificate, another CA."""

    def __init__(self, d):
        self.d = d
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.rsa.public_key().public_numbers()
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        jwks = {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": b64u(n),
                          "e": b64u(pub.e.to_bytes(3, "big"))}]}
        self.write("jwks.json", json.dumps(jwks))
        self.pub_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.write("auth.yaml", f"""\
issuers:
  - name: ci
    issuer: {ISS}
    audience: {AUD}
    jwks: jwks.json
rules:
  - issuer: ci
    sub: "repo:acme/shop:ref:refs/heads/main"
    role: deployer
    apps: [shop]
  - issuer: mtls
    sub: "runner-*.ci.test"
    role: viewer
    apps: ["*"]
""")
        self.ca, self.ca_key = self.make_ca("orch test CA")
        self.other_ca, self.other_ca_key = self.make_ca("another CA")
        self.cert_files("server", "127.0.0.1", self.ca, self.ca_key, server=True)
        self.cert_files("client", "runner-1.ci.test", self.ca, self.ca_key)
        self.cert_files("stranger", "runner-2.ci.test", self.other_ca, self.other_ca_key)
        self.write("ca.pem", self.ca.public_bytes(serialization.Encoding.PEM).decode())
        self.write("other-ca.pem", self.other_ca.public_bytes(serialization.Encoding.PEM).decode())

    def path(self, name):
        return os.path.join(self.d, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def make_ca(self, cn):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = time.time()
        import datetime
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(datetime.datetime.fromtimestamp(now - 60, datetime.timezone.utc))
                .not_valid_after(datetime.datetime.fromtimestamp(now + 86400, datetime.timezone.utc))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        return cert, key

    def cert_files(self, stem, name, ca, ca_key, server=False):
        import datetime
        import ipaddress
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = time.time()
        san = (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]) if server
               else x509.SubjectAlternativeName([x509.DNSName(name)]))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(datetime.datetime.fromtimestamp(now - 60, datetime.timezone.utc))
                .not_valid_after(datetime.datetime.fromtimestamp(now + 86400, datetime.timezone.utc))
                .add_extension(san, critical=False).sign(ca_key, hashes.SHA256()))
        self.write(stem + ".pem", cert.public_bytes(serialization.Encoding.PEM).decode())
        self.write(stem + "-key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode())

    def jwt(self, alg="RS256", kid="k1", iss=ISS, aud=AUD, sub="repo:acme/shop:ref:refs/heads/main",
            exp=600, nbf=None, forge=False):
        now = int(time.time())
        header = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        claims = {"iss": iss, "aud": aud, "sub": sub, "iat": now - 5, "exp": now + exp}
        if nbf is not None:
            claims["nbf"] = now + nbf
        signing = (b64u(json.dumps(header).encode()) + "." +
                   b64u(json.dumps(claims).encode())).encode()
        if alg == "none":
            sig = b""
        elif alg == "HS256":
            h = hmac.HMAC(self.pub_pem, hashes.SHA256())
            h.update(signing)
            sig = h.finalize()
        else:
            sig = self.rsa.sign(signing, padding.PKCS1v15(), hashes.SHA256())
            if forge:
                sig = bytes([sig[0] ^ 1]) + sig[1:]
        return signing.decode() + "." + b64u(sig)


class Server:
    def __init__(self, d, keys, tokens, extra=()):
        self.d = d
        self.state = os.path.join(d, "state")
        tokfile = os.path.join(d, "tokens")
        with open(tokfile, "w") as f:
            for tok, role, apps, ttl in tokens:
                f.write(f"{tok} {role} {apps} {ttl}\n")
        self.log = open(os.path.join(d, "server.log"), "w")  # noqa: SIM115 (closed in stop)
        self.p = subprocess.Popen([TESTD, "--state", self.state, "--api", "127.0.0.1:0",
                                   "--token-file", tokfile, "--auth", keys.path("auth.yaml"),
                                   "--req-timeout-ms", "1500", "--events-poll-ms", "100",
                                   *extra], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("listening "):
            raise AssertionError(f"orch-api-testd did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("orch-api-testd did not stop within 15 s of SIGTERM")
            finally:
                self.log.close()
                self.p.stdout.close()
        return self.p.returncode


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="orch-api-test-")
        cls.keys = Keys(cls.tmp)
        cls.admin, cls.deployer, cls.viewer = token(), token(), token()
        cls.other_deployer, cls.expired = token(), token()
        cls.srv = Server(cls.tmp, cls.keys, [
            (cls.admin, "admin", "*", 0), (cls.deployer, "deployer", "shop", 0),
            (cls.viewer, "viewer", "shop", 0), (cls.other_deployer, "deployer", "other", 0),
            (cls.expired, "admin", "*", -10)])
        # shop and other exist for the reads
        for app in ("shop", "other"):
            s, _, b = cls.req("PUT", f"/v1/apps/{app}", cls.admin, cls.spec(app))
            assert s == 202, (s, b)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"orch-api-testd exited {rc}"

    @staticmethod
    def spec(app, image="orch-demo:1", replicas=2):
        return SPEC.format(app=app, image=image, replicas=replicas)

    @classmethod
    def req(cls, method, path, tok=None, body=None, headers=None, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or cls.srv.port, timeout=90)
        h = dict(headers or {})
        if tok is not None:
            h["Authorization"] = f"Bearer {tok}"
        c.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, data

    def problem(self, status, hdrs, data, want):
        self.assertEqual(status, want, data)
        self.assertEqual(hdrs.get("content-type"), "application/problem+json")
        p = json.loads(data)
        self.assertEqual(p["status"], want)
        self.assertIn("title", p)
        self.assertIn("type", p)
        return p

    ROUTES = [
        ("GET", "/v1/apps", None, "read"),
        ("GET", "/v1/apps/shop", None, "read"),
        ("PUT", "/v1/apps/shop?dry_run=true", "spec", "deploy"),
        ("DELETE", "/v1/apps/shop", None, "deploy"),
        ("GET", "/v1/apps/shop/services/web", None, "read"),
        ("POST", "/v1/apps/shop/services/web/scale", '{"replicas": 2}', "deploy"),
        ("GET", "/v1/apps/shop/services/web/revisions", None, "read"),
        ("POST", "/v1/apps/shop/services/web/rollback", "{}", "deploy"),
        ("GET", "/metrics", None, "read"),
    ]

    def test_health_needs_no_credential(self):
        s, h, b = self.req("GET", "/v1/health")
        self.assertEqual((s, json.loads(b)), (200, {"status": "ok"}))

    def test_every_route_without_credential_is_401(self):
        for method, path, body, _ in self.ROUTES + [("GET", "/v1/events", None, "read")]:
            body = self.spec("shop") if body == "spec" else body
            s, h, b = self.req(method, path, None, body)
            p = self.problem(s, h, b, 401)
            self.assertIn("Bearer", h.get("www-authenticate", ""), path)
            self.assertNotIn("orch_", json.dumps(p))
            s, h, b = self.req(method, path, self.expired, body)
            p = self.problem(s, h, b, 401)
            self.assertNotIn(self.expired[18:], b.decode())  # the secret part

    def test_role_by_route(self):
        """viewer: reads only; deployer: reads and deploys on its app; admin: everything. A DELETE
        and a rollback run last (they change shop) in a separate app."""
        for method, path, body, kind in self.ROUTES:
            if method == "DELETE" or path.endswith("rollback"):
                continue
            body = self.spec("shop") if body == "spec" else body
            for tok, allowed in ((self.viewer, kind == "read"), (self.deployer, True),
                                 (self.admin, True)):
                s, h, b = self.req(method, path, tok, body)
                if allowed:
                    self.assertNotIn(s, (401, 403), f"{method} {path}: {b}")
                else:
                    self.problem(s, h, b, 403)
        # deletes and rollbacks by a viewer are 403 before anything happens
        for method, path, body, kind in self.ROUTES:
            if method == "DELETE" or path.endswith("rollback"):
                self.problem(*self.req(method, path, self.viewer, body), 403)

    def test_other_apps_scope(self):
        self.problem(*self.req("GET", "/v1/apps/other", self.viewer), 403)
        self.problem(*self.req("PUT", "/v1/apps/other", self.deployer, self.spec("other")), 403)
        self.problem(*self.req("POST", "/v1/apps/shop/services/web/scale", self.other_deployer,
                               '{"replicas": 1}'), 403)
        # the app list of a token for shop shows only shop
        s, h, b = self.req("GET", "/v1/apps", self.viewer)
        self.assertEqual(s, 200)
        self.assertEqual({x["app"] for x in json.loads(b)["services"]}, {"shop"})
        s, h, b = self.req("GET", "/v1/apps", self.admin)
        self.assertLessEqual({"shop", "other"}, {x["app"] for x in json.loads(b)["services"]})

    def test_jwts(self):
        k = self.keys
        s, h, b = self.req("GET", "/v1/apps/shop", k.jwt())
        self.assertEqual(s, 200, b)
        self.problem(*self.req("GET", "/v1/apps/other", k.jwt()), 403)
        for name, tok in [("expired", k.jwt(exp=-120)), ("not yet valid", k.jwt(nbf=300)),
                          ("wrong aud", k.jwt(aud="https://else")),
                          ("wrong iss", k.jwt(iss="https://else")),
                          ("forged", k.jwt(forge=True)), ("alg none", k.jwt(alg="none")),
                          ("HS256 with the public key", k.jwt(alg="HS256")),
                          ("unknown kid", k.jwt(kid="k9")), ("garbage", "abc.def.ghi")]:
            with self.subTest(name):
                self.problem(*self.req("GET", "/v1/apps/shop", tok), 401)
        # a JWT whose subject matches no rule is authenticated but granted nothing
        self.problem(*self.req("GET", "/v1/apps/shop", k.jwt(sub="repo:evil/x:ref:main")), 403)

    def test_put_get_etag_and_if_match(self):
        app = "etag"
        s, h, b = self.req("PUT", f"/v1/apps/{app}", self.admin, self.spec(app))
        self.assertEqual(s, 202, b)
        self.assertEqual(h["location"], f"/v1/apps/{app}")
        r = json.loads(b)
        self.assertEqual((r["outcome"], r["exit_code"]), ("recorded", 0))
        s, h, b = self.req("GET", f"/v1/apps/{app}", self.admin)
        self.assertEqual(s, 200)
        etag = h["etag"]
        # two writers holding the same ETag: exactly one wins, the other gets 412
        results = []

        def put(image):
            results.append(self.req("PUT", f"/v1/apps/{app}", self.admin,
                                    self.spec(app, image=image), {"If-Match": etag})[0])
        ts = [threading.Thread(target=put, args=(f"orch-demo:{i}",)) for i in (2, 3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(results), [202, 412])
        # a stale tag stays stale; the current one works; "*" needs an existing app
        self.problem(*self.req("DELETE", f"/v1/apps/{app}", self.admin, None,
                               {"If-Match": etag}), 412)
        s, h, b = self.req("GET", f"/v1/apps/{app}", self.admin)
        new = h["etag"]
        self.assertNotEqual(new, etag)
        s, h, b = self.req("PUT", f"/v1/apps/{app}?dry_run=true", self.admin,
                           self.spec(app, replicas=5), {"If-Match": new})
        self.assertEqual(s, 200, b)
        self.assertEqual(json.loads(b)["exit_code"], 1)  # something would change
        self.problem(*self.req("PUT", "/v1/apps/nosuch", self.admin, self.spec("nosuch"),
                               {"If-Match": "*"}), 412)
        s, h, b = self.req("DELETE", f"/v1/apps/{app}", self.admin, None, {"If-Match": new})
        self.assertEqual(s, 202, b)
        self.assertEqual(sorted(json.loads(b)["deleted"]), ["web", "worker"])
        self.problem(*self.req("GET", f"/v1/apps/{app}", self.admin), 404)

    def test_service_scale_revisions_rollback(self):
        app = "svc"
        self.assertEqual(self.req("PUT", f"/v1/apps/{app}", self.admin, self.spec(app))[0], 202)
        self.assertEqual(self.req("PUT", f"/v1/apps/{app}", self.admin,
                                  self.spec(app, image="orch-demo:2"))[0], 202)
        s, h, b = self.req("GET", f"/v1/apps/{app}/services/web", self.admin)
        self.assertEqual(s, 200, b)
        st = json.loads(b)
        self.assertEqual((st["app"], st["service"], st["revision"]), (app, "web", 2))
        s, h, b = self.req("POST", f"/v1/apps/{app}/services/web/scale", self.admin,
                           '{"replicas": 4}')
        self.assertEqual(s, 202, b)
        self.assertEqual(json.loads(b)["replicas"], 4)
        self.problem(*self.req("POST", f"/v1/apps/{app}/services/web/scale", self.admin,
                               '{"replicas": "many"}'), 422)
        s, h, b = self.req("GET", f"/v1/apps/{app}/services/web/revisions", self.admin)
        self.assertEqual(s, 200, b)
        self.assertEqual([r["revision"] for r in json.loads(b)["revisions"]], [2, 1])
        s, h, b = self.req("POST", f"/v1/apps/{app}/services/web/rollback", self.admin,
                           '{"to_revision": 1}')
        self.assertEqual(s, 202, b)
        self.assertEqual(json.loads(b)["to_revision"], 1)
        self.problem(*self.req("GET", f"/v1/apps/{app}/services/nope", self.admin), 404)
        self.problem(*self.req("GET", "/metrics", self.admin), 404)

    def test_invalid_spec_is_422_with_positions(self):
        s, h, b = self.req("PUT", "/v1/apps/bad", self.admin,
                           "app: bad\nservices:\n  web:\n    imag: x\n    replicas: -1\n")
        p = self.problem(s, h, b, 422)
        self.assertGreaterEqual(len(p["errors"]), 2)
        for e in p["errors"]:
            self.assertRegex(e, r"^spec:\d+:\d+: error: ")
        p = self.problem(*self.req("PUT", "/v1/apps/bad", self.admin, self.spec("shop")), 422)
        self.assertIn("path names 'bad'", p["detail"])
        self.problem(*self.req("PUT", "/v1/apps/bad?wait=forever", self.admin, self.spec("bad")),
                     400)
        self.problem(*self.req("GET", "/v1/apps/bad", self.admin), 404)

    def test_routing_errors(self):
        self.problem(*self.req("GET", "/v1/nope", self.admin), 404)
        self.problem(*self.req("GET", "/v1/apps/Shop", self.admin), 404)
        s, h, b = self.req("POST", "/v1/apps/shop", self.admin, "")
        self.problem(s, h, b, 405)
        self.assertEqual(h["allow"], "GET, PUT, DELETE")

    def test_limits(self):
        # A body over 4 MiB: refused from its Content-Length, before it is read.
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=5) as sk:
            sk.sendall((f"PUT /v1/apps/shop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                        f"{self.admin}\r\nContent-Length: {4 * 1024 * 1024 + 1}\r\n\r\n"
                        ).encode() + b"a" * 65536)
            self.assertTrue(sk.recv(4096).startswith(b"HTTP/1.1 413"))
        # exactly 4 MiB is read (and is no valid spec)
        s, h, b = self.req("PUT", "/v1/apps/shop", self.admin, b"#" * (4 * 1024 * 1024))
        self.problem(s, h, b, 422)
        s, h, b = self.req("GET", "/v1/apps", self.admin, None, {"X-Big": "a" * 20000})
        self.problem(s, h, b, 431)
        # keep-alive: several requests on one connection
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=5)
        for _ in range(3):
            c.request("GET", "/v1/health")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        c.close()

    def test_slow_client_is_cut_off(self):
        """A client trickling its request one byte at a time is closed at the request timeout
        (1.5 s here), not kept as long as it keeps sending."""
        sk = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        start = time.monotonic()
        req = b"GET /v1/apps HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        closed = None
        try:
            for ch in req:
                sk.sendall(bytes([ch]))
                time.sleep(0.2)
                if time.monotonic() - start > 8:
                    break
        except (BrokenPipeError, ConnectionResetError):
            closed = time.monotonic() - start
        if closed is None:
            sk.settimeout(5)
            try:
                data = sk.recv(100)
                self.assertIn(data[:12], (b"", b"HTTP/1.1 408"), data)
            except ConnectionResetError:
                pass
            closed = time.monotonic() - start
        sk.close()
        self.assertLess(closed, 6.0, "the slow client was not cut off")

    def test_events_resume(self):
        app = "ev"
        self.assertEqual(self.req("PUT", f"/v1/apps/{app}", self.admin, self.spec(app))[0], 202)
        first = self.read_events({"Last-Event-ID": "0"}, want=lambda evs: any(
            e["app"] == app for e in evs))
        last = max(e["id"] for e in first)
        self.assertEqual(self.req("POST", f"/v1/apps/{app}/services/web/scale", self.admin,
                                  '{"replicas": 5}')[0], 202)
        again = self.read_events({"Last-Event-ID": str(last)}, want=lambda evs: len(evs) > 0)
        self.assertTrue(all(e["id"] > last for e in again), again)
        self.assertTrue(any(e["app"] == app and e["service"] == "web" for e in again), again)
        # a viewer of shop sees no event of ev
        mine = self.read_events({"Last-Event-ID": "0"}, tok=self.viewer, want=None, seconds=1)
        self.assertTrue(all(e["app"] == "shop" for e in mine), mine)

    def read_events(self, headers, tok=None, want=None, seconds=5):
        sk = socket.create_connection(("127.0.0.1", self.srv.port), timeout=1)
        hdr = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sk.sendall((f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                    f"{tok or self.admin}\r\n{hdr}\r\n").encode())
        buf = b""
        events = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = sk.recv(65536)
            except socket.timeout:
                chunk = b""
            buf += chunk
            events = [json.loads(line[6:]) for line in buf.decode(errors="replace").splitlines()
                      if line.startswith("data: ")]
            if want is not None and want(events):
                break
        sk.close()
        self.assertIn(b"text/event-stream", buf)
        return events

    def test_unix_socket(self):
        path = os.path.join(self.tmp, "api.sock")
        log = open(os.path.join(self.tmp, "unix.log"), "w")
        p = subprocess.Popen([TESTD, "--state", os.path.join(self.tmp, "state2"), "--api",
                              f"unix:{path}"], stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            p.stdout.readline()
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o660)
            sk = socket.socket(socket.AF_UNIX)
            sk.connect(path)
            sk.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                c = sk.recv(4096)
                if not c:
                    break
                data += c
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=15), 0)

    def test_off_loopback_needs_tls(self):
        p = subprocess.run([TESTD, "--state", os.path.join(self.tmp, "s3"), "--api",
                            "0.0.0.0:0"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("tls-cert", p.stderr)

    def test_tls_and_mtls(self):
        k = self.keys
        d = tempfile.mkdtemp(dir=self.tmp)
        srv = Server(d, k, [(self.admin, "admin", "*", 0)],
                     ["--tls-cert", k.path("server.pem"), "--tls-key", k.path("server-key.pem"),
                      "--client-ca", k.path("ca.pem")])
        try:
            def conn(cafile, cert=None, key=None, maxv=None):
                ctx = ssl.create_default_context(cafile=cafile)
                if maxv:
                    ctx.maximum_version = maxv
                if cert:
                    ctx.load_cert_chain(cert, key)
                return http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=5)

            # the client certificate is the identity (viewer by the mtls rule): no bearer needed
            c = conn(k.path("ca.pem"), k.path("client.pem"), k.path("client-key.pem"))
            c.request("GET", "/v1/apps")
            r = c.getresponse()
            self.assertEqual(r.status, 200, r.read())
            r.read()
            c.request("PUT", "/v1/apps/x", body=self.spec("x"))
            r = c.getresponse()
            self.assertEqual(r.status, 403)
            r.read()
            # a bearer token on the same connection takes precedence
            c.request("PUT", "/v1/apps/x?dry_run=true", body=self.spec("x"),
                      headers={"Authorization": f"Bearer {self.admin}"})
            r = c.getresponse()
            self.assertEqual(r.status, 200, r.read())
            c.close()
            # no client certificate, or one from another CA: the handshake fails
            for cert in (None, "stranger"):
                with self.subTest(client_cert=cert):
                    c = conn(k.path("ca.pem"), k.path(f"{cert}.pem") if cert else None,
                             k.path(f"{cert}-key.pem") if cert else None)
                    with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                                            http.client.RemoteDisconnected)):
                        c.request("GET", "/v1/health")
                        c.getresponse().read()
            # the client trusting another CA refuses the server
            c = conn(k.path("other-ca.pem"), k.path("client.pem"), k.path("client-key.pem"))
            with self.assertRaises(ssl.SSLCertVerificationError):
                c.request("GET", "/v1/health")
            # TLS 1.1 is refused
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(k.path("ca.pem"))
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sk:
                    with ctx.wrap_socket(sk, server_hostname="127.0.0.1"):
                        pass
        finally:
            self.assertEqual(srv.stop(), 0)


ORCH = os.environ.get("ORCH_BIN", os.path.join(ROOT, "build", "controller", "cli", "orch"))


class DaemonApiTest(unittest.TestCase):
    """`orch daemon --api` on the real engine: an apply with ?wait follows the daemon's rollout
    to its end and answers with the CLI's exit code; a missing image ends in exit 5 (nothing
    earlier to roll back to); a DELETE removes the containers."""

    def setUp(self):
        try:
            subprocess.run(["docker", "version"], check=True, capture_output=True, timeout=10)
        except (subprocess.SubprocessError, OSError):
            self.skipTest("no Docker engine answers")
        self.tmp = tempfile.mkdtemp(prefix="orch-api-daemon-")
        self.tok = token()
        with open(os.path.join(self.tmp, "tokens"), "w") as f:
            f.write(f"{self.tok} admin * 0\n")
        self.log = open(os.path.join(self.tmp, "daemon.log"), "w+")  # noqa: SIM115
        self.p = subprocess.Popen([ORCH, "--state", os.path.join(self.tmp, "state"), "daemon",
                                   "--dns", "off", "--api", "127.0.0.1:0", "--api-token-file",
                                   os.path.join(self.tmp, "tokens")], stderr=self.log)
        self.port = None
        deadline = time.monotonic() + 20
        while self.port is None and time.monotonic() < deadline:
            time.sleep(0.2)
            self.log.seek(0)
            for line in self.log.read().splitlines():
                if "api: serving HTTP/1.1 on 127.0.0.1:" in line:
                    self.port = int(line.rsplit(":", 1)[1])
        self.assertIsNotNone(self.port, "the daemon did not start its API")
        self.app = f"apid{os.getpid() % 100000}"

    def tearDown(self):
        try:
            ApiTest.req("DELETE", f"/v1/apps/{self.app}", self.tok, port=self.port)
        except OSError:
            pass
        time.sleep(3)
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.log.close()
        subprocess.run(["docker", "rm", "-f"] + subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=orch.app={self.app}"],
            capture_output=True, text=True).stdout.split(), capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0)

    def test_apply_wait_and_delete(self):
        spec = f"app: {self.app}\nservices:\n  web:\n    image: orch-demo:1\n    replicas: 1\n"
        s, h, b = ApiTest.req("PUT", f"/v1/apps/{self.app}?wait=60s", self.tok, spec,
                              port=self.port)
        self.assertEqual(s, 200, b)
        r = json.loads(b)
        self.assertEqual((r["outcome"], r["exit_code"]), ("converged", 0), r)
        s, h, b = ApiTest.req("GET", f"/v1/apps/{self.app}/services/web", self.tok,
                              port=self.port)
        st = json.loads(b)
        self.assertEqual(st["replicas"]["healthy"], 1, st)
        self.assertEqual(len(st["instances"]), 1)
        # a missing image: the rollout fails and nothing earlier is good for web2: exit 5
        bad = spec + "  web2:\n    image: orch-missing-image:404\n"
        s, h, b = ApiTest.req("PUT", f"/v1/apps/{self.app}?wait=20s", self.tok, bad,
                              port=self.port)
        self.assertEqual(s, 200, b)
        self.assertNotEqual(json.loads(b)["exit_code"], 0, b)
        s, h, b = ApiTest.req("DELETE", f"/v1/apps/{self.app}", self.tok, port=self.port)
        self.assertEqual(s, 202, b)


if __name__ == "__main__":
    unittest.main(verbosity=2)
