"""A private OpenLDAP slapd on loopback for the directory (LDAP) source tests.

``slapd`` (session): ``/usr/sbin/slapd -d 0 -f <own slapd.conf>`` with an mdb database
for ``dc=exempelby,dc=se`` (rootdn ``cn=admin,...``), the core/cosine/inetorgperson/nis
schemas, listening on ``ldap://127.0.0.1:<port>/`` (StartTLS offered) and
``ldaps://127.0.0.1:<port>/``, with a server certificate signed by a CA made here.
Besides the rootdn it holds ``cn=reader,...``, whose plain (unpaged) searches slapd cuts
off after 5 entries while paged ones read all (so a test proves paging is used), and
``cn=limited,...``, whose paged searches slapd refuses after 3 entries in total
(``limits ... size.prtotal``): a real search that fails part way.

``slapd_tree`` (function): a fresh, empty ``ou=...`` below the suffix for one test;
``Slapd.load(ldif)`` adds entries with ``ldapadd``. Skips, saying so, without slapd.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = Path("/usr/sbin/slapd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SUFFIX = "dc=exempelby,dc=se"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "admin-secret-for-tests"
#: an ordinary reader: a plain search stops at READER_PLAIN_LIMIT entries, as AD's
#: MaxPageSize does, while a paged search reads everything
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret-for-tests"
READER_PLAIN_LIMIT = 5
LIMITED_DN = f"cn=limited,{SUFFIX}"
LIMITED_PASSWORD = "limited-secret-for-tests"
#: entries a paged search as LIMITED_DN may return in total before slapd refuses
LIMITED_TOTAL = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(folder: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA; returns (its PEM file, key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def _server_cert(
    folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and ldap.exempelby.test (not localhost)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("ldap.exempelby.test"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def _slapd_conf(work: Path, ca: Path, cert: Path, key: Path) -> str:
    schemas = "".join(
        f"include {SCHEMA_DIR / name}.schema\n"
        for name in ("core", "cosine", "inetorgperson", "nis")
    )
    return f"""\
{schemas}pidfile {work / "slapd.pid"}
argsfile {work / "slapd.args"}
modulepath {MODULE_DIR}
moduleload back_mdb
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}

database mdb
maxsize 104857600
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {work / "db"}
limits dn.exact="{READER_DN}"
  size.soft={READER_PLAIN_LIMIT} size.hard={READER_PLAIN_LIMIT}
  size.pr=unlimited size.prtotal=unlimited
# a paged search by this user is refused once it passed LIMITED_TOTAL entries
limits dn.exact="{LIMITED_DN}"
  size.prtotal={LIMITED_TOTAL} size.soft=unlimited size.hard=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"""


def _base_ldif() -> str:
    return f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: exempelby
o: Exempelby kommun

dn: {READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: {READER_PASSWORD}

dn: {LIMITED_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: limited
userPassword: {LIMITED_PASSWORD}
"""


@dataclass
class Slapd:
    """A running slapd and what a test needs to reach it."""

    host: str
    port: int
    tls_port: int
    ca_file: Path
    wrong_ca_file: Path
    work: Path
    log: Path
    _process: subprocess.Popen[bytes] | None = None

    suffix = SUFFIX
    root_dn = ROOT_DN
    root_password = ROOT_PASSWORD
    reader_dn = READER_DN
    reader_password = READER_PASSWORD
    reader_plain_limit = READER_PLAIN_LIMIT
    limited_dn = LIMITED_DN
    limited_password = LIMITED_PASSWORD
    limited_total = LIMITED_TOTAL

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.tls_port}"

    def start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        urls = f"{self.url}/ {self.ldaps_url}/"
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen(
                [str(SLAPD), "-d", "0", "-h", urls, "-f", str(self.work / "slapd.conf")],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"slapd exited at start; see {self.log}")
            probe = subprocess.run(
                ["ldapsearch", "-x", "-H", self.url, "-b", "", "-s", "base", "-LLL", "1.1"],
                capture_output=True,
                timeout=5,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"slapd did not answer on {self.url}; see {self.log}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def load(self, ldif: str) -> None:
        """Add entries (as the rootdn) with ``ldapadd``."""
        done = subprocess.run(
            ["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(),
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ldapadd failed: {done.stderr.decode(errors='replace')}")


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    if not SLAPD.exists() or shutil.which("ldapadd") is None:
        pytest.skip("slapd tests need OpenLDAP: apt-get install -y slapd ldap-utils")
    work = Path(tempfile.mkdtemp(prefix="autosynk-slapd-"))
    try:
        (work / "db").mkdir(mode=0o700)
        ca, ca_key, ca_cert = make_ca(work, "test-ca")
        wrong_ca, _, _ = make_ca(work, "other-ca")
        cert, key = _server_cert(work, ca_key, ca_cert)
        (work / "slapd.conf").write_text(_slapd_conf(work, ca, cert, key))
        checked = subprocess.run(
            [str(SLAPD), "-T", "test", "-u", "-f", str(work / "slapd.conf")], capture_output=True
        )
        if checked.returncode != 0:
            raise RuntimeError(f"slapd.conf refused: {checked.stderr.decode(errors='replace')}")
        server = Slapd(
            host="127.0.0.1",
            port=_free_port(),
            tls_port=_free_port(),
            ca_file=ca,
            wrong_ca_file=wrong_ca,
            work=work,
            log=work / "slapd.log",
        )
        server.start()
        try:
            server.load(_base_ldif())
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


_TREE_NUMBERS = itertools.count(1)


@pytest.fixture
def slapd_tree(slapd: Slapd, request: pytest.FixtureRequest) -> str:
    """A fresh organisational unit for one test; returns its DN."""
    slapd.start()  # a test that stopped the server must not take the next one down with it
    readable = "".join(c if c.isalnum() else "-" for c in request.node.name)[:48]
    name = f"{readable}-{next(_TREE_NUMBERS)}"  # parametrised names may clash once cut
    dn = f"ou={name},{SUFFIX}"
    slapd.load(f"dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n")
    return dn
