"""The kernel's pip configuration, with credentials split off into build-arg secrets.

The probe reads pip's configuration files (pip's documented locations and order,
``[global]`` then ``[install]``) and the ``PIP_*`` environment; this module turns that
into a :class:`PipConfig`.

Secret convention (render and backends rely on it):

* Every index URL in ``PipConfig`` is free of credentials.
* An index URL that had credentials (``https://user:token@host/simple``, or a ``netrc``
  entry for its host) gets a build-arg name: ``JC_INDEX_URL`` for ``index_url`` and
  ``JC_EXTRA_INDEX_URL_<i>`` for ``extra_index_urls[i]`` (``i`` counts from 0). The names
  are listed in ``secret_build_args``; ``secret_values[name]`` holds the full URL *with*
  the credentials, in memory only (``compare=False, repr=False``).
* Render writes ``ARG <name>`` in the builder stage only and uses ``$<name>`` in place of
  that URL there (see :func:`index_url_args`); never in the final stage, never in a file of
  the context. The backend passes ``secret_values`` as ``buildargs``.
* ``cert_file`` is a CA bundle on the host: not a secret, render copies it into the context.
* ``file://`` indexes and ``find-links`` folders exist only on the host and are left out
  (with a warning); the wheels of them that the image needs are carried in the context
  instead (:mod:`.wheels`).

:class:`HostIndex` is the same configuration as seen from this host, for resolving here
(:mod:`.resolve`): local indexes and ``find-links`` included, credentials kept in memory.
It is never rendered.
"""

from __future__ import annotations

import netrc
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .snapshot import PipConfig

INDEX_ARG = "JC_INDEX_URL"
EXTRA_INDEX_ARG = "JC_EXTRA_INDEX_URL_{}"


def split_credentials(url: str, netrc_path: str | None = None) -> tuple[str, str | None]:
    """``(url without credentials, url with credentials or None)``; netrc fills in missing ones."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = parts.netloc.rsplit("@", 1)[-1]
    clean = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    if "@" in parts.netloc and parts.username:
        return clean, url
    if netrc_path and host:
        try:
            auth = netrc.netrc(netrc_path).authenticators(host)
        except (OSError, netrc.NetrcParseError):
            auth = None
        if auth and auth[0]:
            user = urllib.parse.quote(auth[0], safe="")
            password = urllib.parse.quote(auth[2] or "", safe="")
            secret = urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{netloc}"))
            return clean, secret
    return clean, None


def pip_config_from_probe(raw: Mapping[str, Any]) -> tuple[PipConfig, list[str]]:
    """The :class:`PipConfig` of a probe's ``pip_config`` section, and warnings."""
    values: Mapping[str, str] = raw.get("values", {})
    netrc_path: str | None = raw.get("netrc")
    warnings: list[str] = []
    secrets: dict[str, str] = {}

    def keep(url: str, arg: str) -> str | None:
        if url.startswith("file:") or "://" not in url:
            warnings.append(f"pip index {url} is a local folder of this machine and is left out of the build.")
            return None
        clean, secret = split_credentials(url, netrc_path)
        if secret is not None:
            secrets[arg] = secret
        return clean

    index_url = keep(values["index-url"], INDEX_ARG) if values.get("index-url") else None
    extras: list[str] = []
    for url in values.get("extra-index-url", "").split():
        clean = keep(url, EXTRA_INDEX_ARG.format(len(extras)))
        if clean is not None:
            extras.append(clean)
    if values.get("find-links"):
        warnings.append(f"pip find-links {values['find-links']} is left out of the build (host-only folders); "
                        "the wheels from there that the index lacks are carried into the image.")
    cert = values.get("cert") or raw.get("ssl_cert_file")
    cert_file = Path(cert) if cert and Path(cert).is_file() else None
    if cert and cert_file is None:
        warnings.append(f"pip cert {cert} does not exist and is left out of the build.")
    config = PipConfig(
        index_url=index_url,
        extra_index_urls=tuple(extras),
        trusted_hosts=tuple(values.get("trusted-host", "").split()),
        cert_file=cert_file,
        secret_build_args=tuple(secrets),
        secret_values=secrets,
    )
    return config, warnings


@dataclass(frozen=True)
class HostIndex:
    """Where the kernel's pip finds packages, as this host reaches them (never written to a file)."""

    index_url: str | None = field(default=None, repr=False)  # may carry credentials
    extra_index_urls: tuple[str, ...] = field(default=(), repr=False)  # may carry credentials
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()
    cert_file: Path | None = None
    netrc: str | None = None


def host_index(raw: Mapping[str, Any]) -> HostIndex:
    """The :class:`HostIndex` of a probe's ``pip_config`` section."""
    values: Mapping[str, str] = raw.get("values", {})
    cert = values.get("cert") or raw.get("ssl_cert_file")
    return HostIndex(
        index_url=values.get("index-url") or None,
        extra_index_urls=tuple(values.get("extra-index-url", "").split()),
        find_links=tuple(values.get("find-links", "").split()),
        no_index=values.get("no-index", "").strip().lower() in ("1", "true", "yes", "on"),
        trusted_hosts=tuple(values.get("trusted-host", "").split()),
        cert_file=Path(cert) if cert and Path(cert).is_file() else None,
        netrc=raw.get("netrc"),
    )


def index_url_args(config: PipConfig) -> tuple[str | None, tuple[str, ...]]:
    """Index URLs for the builder stage: ``$NAME`` where a secret build arg holds the real URL."""
    index = f"${INDEX_ARG}" if INDEX_ARG in config.secret_build_args else config.index_url
    extras = tuple(
        f"${EXTRA_INDEX_ARG.format(i)}" if EXTRA_INDEX_ARG.format(i) in config.secret_build_args else url
        for i, url in enumerate(config.extra_index_urls)
    )
    return index, extras
