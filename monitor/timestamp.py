"""RFC 3161 time-stamps: a third party's signed word that some bytes existed no later than a given time.

Why: an evidence bundle's manifest lists the SHA-256 of every file in it.  A
time-stamping authority (TSA) signs the manifest's hash with its own clock,
so anyone holding the TSA's certificate can check, without trusting us or our
clock, that this exact manifest (and so every file it lists) existed at that
time.  The token is the TSA's DER-encoded TimeStampResp, kept beside the
manifest as `manifest.json.tsr` (what `openssl ts -verify -in` reads).

Parsing and checking the token is rfc3161-client's (Trail of Bits' Rust-backed
client, also used by sigstore-python): it checks the PKI status, the CMS
signature, the chain to the roots we give it, the timeStamping extended key
usage and the message imprint.  Only the HTTP request is ours (stdlib).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY_BYTES = 1 << 20
_IMPRINT_HASHES = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
                   "2.16.840.1.101.3.4.2.3": "sha512"}


# CMS fields outside the signature that rfc3161-client reads but does not hold to a value: checked here,
# so that no byte of a token can change without verification failing (RFC 5652 §5.1, §5.3).
SIGNED_DATA_VERSION = 3  # encapsulated content other than id-data
SIGNER_INFO_VERSIONS = {0x30: 1, 0xA0: 3}  # sid: issuerAndSerialNumber (SEQUENCE) → 1, subjectKeyIdentifier [0] → 3
_SHA256, _SHA384, _SHA512 = "2.16.840.1.101.3.4.2.1", "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3"
# signature algorithm → the digest it implies (None: any digest, as with plain rsaEncryption or Ed25519)
SIGNATURE_ALGORITHMS = {
    "1.2.840.10045.4.3.2": _SHA256, "1.2.840.10045.4.3.3": _SHA384, "1.2.840.10045.4.3.4": _SHA512,  # ECDSA
    "1.2.840.113549.1.1.11": _SHA256, "1.2.840.113549.1.1.12": _SHA384, "1.2.840.113549.1.1.13": _SHA512,  # RSA
    "1.2.840.113549.1.1.1": None, "1.2.840.113549.1.1.10": None, "1.3.101.112": None,  # RSA, RSASSA-PSS, Ed25519
}


class TimestampError(Exception):
    """The TSA could not be asked, or its answer is not a usable time-stamp; the message says which."""


def request_timestamp(data: bytes, tsa_url: str, timeout: float = 30.0) -> bytes:
    """Ask the TSA at `tsa_url` to time-stamp the SHA-256 of `data`; its DER TimeStampResp.

    The answer is checked before it is returned: granted, for our nonce and
    our hash, and parseable; its signature is checked by `check_timestamp`.
    """
    from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

    request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build()
    http_request = urllib.request.Request(tsa_url, data=request.as_bytes(), method="POST",
                                          headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE})
    try:
        with urllib.request.urlopen(http_request, timeout=timeout) as answer:
            body = answer.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"the time-stamping authority {tsa_url} answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TimestampError(f"cannot reach the time-stamping authority {tsa_url}: {reason}") from exc
    if len(body) > MAX_REPLY_BYTES:
        raise TimestampError(f"the time-stamping authority {tsa_url} sent more than {MAX_REPLY_BYTES} bytes")
    try:
        response = decode_timestamp_response(body)
    except ValueError as exc:
        raise TimestampError(f"the answer of {tsa_url} is not a time-stamp response: {exc}") from exc
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        text = "; ".join(response.status_string) or PKIStatus(response.status).name
        raise TimestampError(f"the time-stamping authority {tsa_url} refused: {text}")
    if response.tst_info.nonce != request.nonce:
        raise TimestampError(f"the time-stamp from {tsa_url} answers another request (nonce differs)")
    if response.tst_info.message_imprint.message != hashlib.sha256(data).digest():
        raise TimestampError(f"the time-stamp from {tsa_url} is for other data (message imprint differs)")
    return body


@dataclass
class TimestampCheck:
    """What checking a token against some data and a CA certificate found.

    `problems` are the token's own (unreadable, not granted, untrusted);
    `imprint_matches` says whether it is a token for the data at all.
    """

    problems: list[str] = field(default_factory=list)
    gen_time: datetime | None = None
    serial: int | None = None
    tsa: str | None = None
    hash_algorithm: str | None = None
    imprint: str | None = None  # hex
    signature_checked: bool = False
    imprint_matches: bool | None = None  # None: not compared (the token could not be read)
    data_digest: str | None = None  # hex, with `hash_algorithm`

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.imprint_matches)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": list(self.problems),
                "time": self.gen_time.isoformat().replace("+00:00", "Z") if self.gen_time else None,
                "serial": self.serial, "tsa": self.tsa, "hash_algorithm": self.hash_algorithm,
                "imprint": self.imprint, "imprint_matches": self.imprint_matches,
                "signature_checked": self.signature_checked}


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at `at`; raises ValueError past the end."""
    tag, length = data[at], data[at + 1]
    start = at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("DER element runs past the end")
    return tag, start, start + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found, at = [], start
    while at < end:
        element = _tlv(data, at)
        found.append(element)
        at = element[2]
    return found


def _oid(value: bytes) -> str:
    parts, n = [], 0
    for byte in value:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(n)
            n = 0
    first = min(parts[0] // 40, 2)
    return ".".join(map(str, [first, parts[0] - 40 * first, *parts[1:]]))


def unsigned_field_problems(token: bytes) -> list[str]:
    """What is wrong with the CMS fields a token's signature does not cover (versions, the signature
    algorithm's name, trailing bytes); [] for a well-formed token."""
    try:
        tag, start, end = _tlv(token, 0)
        if end != len(token):
            return [f"{len(token) - end} bytes after the time-stamp response"]
        _status, content_info = _children(token, start, end)[:2]
        _, explicit = _children(token, content_info[1], content_info[2])[:2]
        (signed_data,) = _children(token, explicit[1], explicit[2])
        fields = _children(token, signed_data[1], signed_data[2])
        problems = []
        version = int.from_bytes(token[fields[0][1]:fields[0][2]], "big")
        if version != SIGNED_DATA_VERSION:
            problems.append(f"SignedData version is {version}, not {SIGNED_DATA_VERSION}")
        digests = {_oid(token[o[1]:o[2]]) for a in _children(token, fields[1][1], fields[1][2])
                   for o in _children(token, a[1], a[2])[:1]}
        signers = _children(token, fields[-1][1], fields[-1][2])
        if len(signers) != 1:
            return problems + [f"{len(signers)} signers, not one"]
        signer = _children(token, signers[0][1], signers[0][2])
        version = int.from_bytes(token[signer[0][1]:signer[0][2]], "big")
        expected = SIGNER_INFO_VERSIONS.get(signer[1][0])
        if version != expected:
            problems.append(f"SignerInfo version is {version}, not {expected}")
        digest_oid = _children(token, signer[2][1], signer[2][2])[0]
        digest = _oid(token[digest_oid[1]:digest_oid[2]])
        algorithm_at = 4 if signer[3][0] == 0xA0 else 3
        algorithm = _children(token, signer[algorithm_at][1], signer[algorithm_at][2])[0]
        signature_oid = _oid(token[algorithm[1]:algorithm[2]])
        if digest not in digests:
            problems.append(f"the signer's digest {digest} is not among the SignedData's digests")
        if signature_oid not in SIGNATURE_ALGORITHMS:
            problems.append(f"unknown signature algorithm {signature_oid}")
        elif SIGNATURE_ALGORITHMS[signature_oid] not in (None, digest):
            problems.append(f"signature algorithm {signature_oid} does not go with digest {digest}")
        return problems
    except (ValueError, IndexError) as exc:
        return [f"not a well-formed time-stamp response ({exc or type(exc).__name__})"]


def load_certificates(pem: bytes) -> list:
    """Every certificate in a PEM file; raises TimestampError when there is none."""
    import cryptography.x509

    try:
        certificates = cryptography.x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise TimestampError(f"not a PEM certificate file: {exc}") from exc
    return certificates


def _signer_name(response) -> str | None:
    """The TSA's name as the token gives it, else the subject of its signing certificate."""
    import cryptography.x509

    value = getattr(response.tst_info.name, "value", None)
    if value is not None:
        return value.rfc4514_string() if hasattr(value, "rfc4514_string") else str(value)
    for der in response.signed_data.certificates:
        certificate = cryptography.x509.load_der_x509_certificate(der)
        if cryptography.x509.ExtendedKeyUsageOID.TIME_STAMPING in _usages(certificate):
            return certificate.subject.rfc4514_string()
    return None


def _usages(certificate) -> list:
    import cryptography.x509

    try:
        return list(certificate.extensions.get_extension_for_class(cryptography.x509.ExtendedKeyUsage).value)
    except cryptography.x509.ExtensionNotFound:
        return []


def check_timestamp(token: bytes, data: bytes, ca_pem: bytes | None) -> TimestampCheck:
    """Check a token: that it parses and was granted, that its signature chains to `ca_pem` with the
    timeStamping usage, and that its message imprint is the hash of `data`.

    Without `ca_pem` the signature cannot be trusted, and that is a problem
    too: anyone can make a token with a certificate of their own.
    """
    from rfc3161_client import PKIStatus, VerifierBuilder, decode_timestamp_response

    check = TimestampCheck()
    try:
        response = decode_timestamp_response(token)
        info = response.tst_info
        check.gen_time, check.serial = info.gen_time, info.serial_number
        algorithm_oid = info.message_imprint.hash_algorithm.dotted_string
        check.imprint = info.message_imprint.message.hex()
        check.tsa = _signer_name(response)
        status = PKIStatus(response.status)
    except Exception as exc:  # noqa: BLE001 - a damaged token makes the parser raise all sorts (KeyError, ...)
        check.problems.append(f"the token is not a readable time-stamp response ({type(exc).__name__}: {exc})")
        return check
    if status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        check.problems.append(f"the token's status is {status.name}, not granted")
        return check
    check.problems += [f"the token is damaged: {p}" for p in unsigned_field_problems(token)]
    if ca_pem is None:
        check.problems.append("its signature was not checked: no CA certificate of the time-stamping authority "
                              "was given (--tsa-ca FILE or [evidence] tsa_ca_file)")
    else:
        try:
            verifier = VerifierBuilder()
            for certificate in load_certificates(ca_pem):
                verifier = verifier.add_root_certificate(certificate)
            verifier.build().verify(response, info.message_imprint.message)
            check.signature_checked = True
        except TimestampError:
            raise
        except Exception as exc:  # noqa: BLE001 - VerificationError, or the parser's errors on a damaged token
            check.problems.append(f"the token's signature does not verify against the CA certificate: {exc}")
            return check
    check.hash_algorithm = _IMPRINT_HASHES.get(algorithm_oid)
    if check.hash_algorithm is None:
        check.problems.append(f"the token's hash algorithm {algorithm_oid} is not SHA-2")
        return check
    check.data_digest = hashlib.new(check.hash_algorithm, data).hexdigest()
    check.imprint_matches = check.data_digest == check.imprint
    return check
