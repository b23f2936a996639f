"""A local RFC 3161 time-stamping authority for tests: `openssl ts -reply` behind a tiny HTTP server.

Made once per test session with openssl: a throwaway CA, a TSA certificate it
signs (critical extended key usage timeStamping), and a second, unrelated CA
that must not verify the TSA's tokens.  Nothing leaves 127.0.0.1.

    local_tsa.url          POST a TimeStampReq here, get a TimeStampResp
    local_tsa.ca_file      the CA certificate that verifies its tokens (PEM)
    local_tsa.other_ca_file
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = {dir}/serial
signer_cert = {dir}/tsa.pem
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)


@dataclass
class LocalTSA:
    url: str
    ca_file: Path
    other_ca_file: Path
    requests: list[bytes]


@pytest.fixture(scope="session")
def local_tsa(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tsa")
    _make_ca(directory, "Test TSA Root")
    _make_ca(directory, "Unrelated Root")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tsa.key",
             "-out", "tsa.csr", "-subj", "/CN=Test TSA", cwd=directory)
    (directory / "tsa.ext").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                       "extendedKeyUsage=critical,timeStamping\n")
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "Test TSA Root.pem", "-CAkey", "Test TSA Root.key",
             "-CAcreateserial", "-out", "tsa.pem", "-days", "2", "-extfile", "tsa.ext", cwd=directory)
    (directory / "serial").write_text("01\n")
    config = directory / "tsa.cnf"
    config.write_text(TSA_CONFIG.format(dir=directory))
    lock = threading.Lock()
    requests: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            requests.append(query)
            with lock, tempfile.TemporaryDirectory(dir=directory) as work:
                (Path(work) / "q.tsq").write_bytes(query)
                done = subprocess.run(["openssl", "ts", "-reply", "-config", str(config), "-queryfile", "q.tsq",
                                       "-out", "r.tsr"], cwd=work, capture_output=True, timeout=60)
                reply = (Path(work) / "r.tsr").read_bytes() if done.returncode == 0 else None
            if reply is None:
                self.send_error(400)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LocalTSA(url=f"http://127.0.0.1:{server.server_address[1]}/tsr", ca_file=directory / "Test TSA Root.pem",
                   other_ca_file=directory / "Unrelated Root.pem", requests=requests)
    server.shutdown()
    server.server_close()
