"""How the PostgreSQL target's TLS is settled: the server is verified unless it is this machine.

``sslmode=require`` encrypts but accepts any certificate: a machine on the path with a
self-signed one received the target's password in clear, twice per run (issue 23). So:

* the default is ``verify-full``: the server's certificate must chain to a trusted CA and name
  the host. The CA bundle is the URL's ``sslrootcert``, else ``PGSSLROOTCERT``, else the
  system's bundle (``ca-certificates``; the image adds RDS's root CAs to it, so RDS needs no
  setting there); a bundle that is not there is exit 2, before any connection;
* ``verify-ca`` (chain, not the name) may be asked for explicitly;
* ``require`` (unverified) and ``disable`` (plain text) only for a server on this machine (a
  loopback address, ``localhost``, a Unix socket) or with ``DATABASE_INSECURE_TLS=1``, the
  explicit, visible override; ``allow``/``prefer`` never (they fall back to plain text).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from pathlib import Path

from fluxion_etl.errors import ConfigError

DEFAULT_SSLMODE = "verify-full"
VERIFYING = ("verify-full", "verify-ca")
UNVERIFIED = ("require", "disable")
OVERRIDE = "DATABASE_INSECURE_TLS"


def is_local(params: Mapping[str, str]) -> bool:
    """Whether every host the connection may use is this machine: no host (the default Unix
    socket), a socket directory, ``localhost`` or a loopback address (``hostaddr`` wins)."""
    raw = params.get("hostaddr") or params.get("host") or ""
    hosts = [h.strip() for h in raw.split(",")] if raw else [""]
    return all(_local(host) for host in hosts)


def _local(host: str) -> bool:
    if host == "" or host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_allowed(env: Mapping[str, str]) -> bool:
    raw = (env.get(OVERRIDE) or "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{OVERRIDE}={raw!r} is not one of: 1, 0 (true, false)")
    return raw in ("1", "true", "yes")


def check_sslmode(params: Mapping[str, str], env: Mapping[str, str]) -> None:
    """ConfigError unless the URL's sslmode may be used for its host (see the module)."""
    sslmode = params.get("sslmode", DEFAULT_SSLMODE)
    if sslmode in VERIFYING:
        return
    if sslmode not in UNVERIFIED:
        raise ConfigError(
            f"DATABASE_URL sslmode={sslmode} may fall back to an unencrypted session: use "
            f"verify-full (the default) or verify-ca (require or disable only for a local server)"
        )
    if not is_local(params) and not insecure_allowed(env):
        what = (
            "sends the password in plain text"
            if sslmode == "disable"
            else ("does not check who the server is (anyone on the path may pose as it)")
        )
        raise ConfigError(
            f"DATABASE_URL sslmode={sslmode} {what}: allowed only for a server on this "
            f"machine; use verify-full with PGSSLROOTCERT (the server's CA bundle), or set "
            f"{OVERRIDE}=1 to accept it"
        )


def settle_tls(params: dict[str, str], env: Mapping[str, str]) -> None:
    """Fill ``sslmode`` and, when the server is verified, ``sslrootcert`` into ``params`` (the
    host known by now: the URL's or the secret's); ConfigError when that cannot be done."""
    params.setdefault("sslmode", DEFAULT_SSLMODE)
    check_sslmode(params, env)
    if params["sslmode"] not in VERIFYING or params.get("sslrootcert"):
        return
    explicit = (env.get("PGSSLROOTCERT") or "").strip()
    bundle = explicit or system_bundle()
    if not bundle or not Path(bundle).is_file():
        source = f"PGSSLROOTCERT={explicit}" if explicit else "the system CA bundle"
        raise ConfigError(
            f"DATABASE_URL sslmode={params['sslmode']} needs a CA bundle to verify the server: "
            f"{source} is not a readable file (set PGSSLROOTCERT to the server's CA bundle, "
            "e.g. RDS's global-bundle.pem)"
        )
    params["sslrootcert"] = bundle


def system_bundle() -> str | None:
    """The system's CA bundle file as OpenSSL sees it (Debian: ca-certificates.crt)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return None
