"""pip configuration into the build, credentials split off into build-arg secrets."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_containerize.capture import capture
from jupyter_containerize.capture.interpreter import run_probe
from jupyter_containerize.capture.pipconfig import index_url_args, pip_config_from_probe

SECRET = "s3cretT0ken"


def test_credentials_in_index_url_become_a_build_arg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = https://pub.example/simple file:///opt/local/simple\n")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine pub.example login bob password {SECRET}2\n")
    netrc.chmod(0o600)
    env = {"PIP_CONFIG_FILE": str(conf), "PIP_INDEX_URL": f"https://user:{SECRET}@private.example/simple",
           "NETRC": str(netrc), "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt", "PIP_FIND_LINKS": ""}
    probe = run_probe(sys.executable, env=env)  # a real probe run with that environment
    config, warnings = pip_config_from_probe(probe["pip_config"])
    assert config.index_url == "https://private.example/simple"
    assert config.extra_index_urls == ("https://pub.example/simple",)
    assert config.secret_build_args == ("JC_INDEX_URL", "JC_EXTRA_INDEX_URL_0")
    assert config.secret_values["JC_INDEX_URL"] == f"https://user:{SECRET}@private.example/simple"
    assert config.secret_values["JC_EXTRA_INDEX_URL_0"] == f"https://bob:{SECRET}2@pub.example/simple"
    assert index_url_args(config) == ("$JC_INDEX_URL", ("$JC_EXTRA_INDEX_URL_0",))
    assert any("file:///opt/local/simple" in w for w in warnings)
    public = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "secret_values"}
    assert SECRET not in repr(public) and SECRET not in repr(config)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import packaging")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    snap = capture(tmp_path / "nb.ipynb", sys.executable)
    text = repr(dataclasses.replace(snap, pip_config=dataclasses.replace(snap.pip_config, secret_values={})))
    assert SECRET not in text
    assert snap.pip_config.secret_values["JC_INDEX_URL"].startswith("https://user:")


def test_cert_and_trusted_hosts(tmp_path: Path) -> None:
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    config, warnings = pip_config_from_probe({"values": {"cert": str(cert), "trusted-host": "a b",
                                                         "index-url": "https://idx.example/simple"}})
    assert config.cert_file == cert and config.trusted_hosts == ("a", "b") and not config.secret_build_args
    assert warnings == []
    assert os.path.exists(cert)
