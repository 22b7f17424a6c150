"""LocalS3Proxy: start, status, stop, signature checks and start-up failures (real Java)."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from darkroom_common.storage import S3Store, StorageAccessDenied, StorageSettings
from darkroom_dev.local.jars import ensure_jars
from darkroom_dev.local.s3proxy import LocalS3Proxy, LocalServerError, main
from darkroom_dev.testing.s3 import free_port

pytestmark = pytest.mark.s3


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[LocalS3Proxy]:
    p = LocalS3Proxy(tmp_path / "s3", free_port(), "lifecycle-key", "lifecycle-secret")
    yield p
    p.stop()


def test_start_status_stop(proxy: LocalS3Proxy) -> None:
    assert not proxy.status().running
    began = time.monotonic()
    status = proxy.start()
    elapsed = time.monotonic() - began
    print(f"S3Proxy answered {elapsed:.2f} s after start()")
    assert status.running
    assert status.pid is not None
    assert status.endpoint_url == proxy.endpoint_url
    assert int(proxy.pid_path.read_text()) == status.pid
    props = proxy.properties_path.read_text()
    assert "s3proxy.authorization=aws-v4" in props
    assert f"jclouds.filesystem.basedir={proxy.data_dir}" in props
    assert "s3proxy.virtual-host" not in props.replace("# s3proxy.virtual-host", "")

    again = proxy.start()  # idempotent: the same process
    assert again.pid == status.pid

    # A second manager on the same folder sees the same server.
    twin = LocalS3Proxy(proxy.state_dir, proxy.port)
    assert twin.status().pid == status.pid

    assert proxy.stop() is True
    assert not proxy.status().running
    assert not proxy.pid_path.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.endpoint_url, timeout=1)
    assert proxy.stop() is False


async def test_server_verifies_signatures(proxy: LocalS3Proxy) -> None:
    proxy.start()
    settings = StorageSettings(
        backend="s3",
        bucket="sigcheck",
        endpoint_url=proxy.endpoint_url,
        access_key_id=proxy.access_key,
        secret_access_key=proxy.secret_key,
    )
    async with S3Store(settings) as good:
        assert await good.ensure_bucket() is True
        await good.put("k", b"v")
        # Objects land in the state folder (jclouds filesystem provider).
        assert (proxy.data_dir / "sigcheck" / "k").read_bytes() == b"v"
    forged = settings.model_copy(update={"secret_access_key": SecretStr("not-the-secret")})
    async with S3Store(forged) as bad:
        with pytest.raises(StorageAccessDenied):
            await bad.get_bytes("k")
    async with httpx.AsyncClient() as http:
        anonymous = await http.get(f"{proxy.endpoint_url}/sigcheck/k", timeout=5)
        sigv2 = await http.get(
            f"{proxy.endpoint_url}/sigcheck/k",
            headers=sigv2_headers(proxy.access_key, proxy.secret_key, "GET", "/sigcheck/k"),
            timeout=5,
        )
    assert anonymous.status_code == 403
    # A correct legacy Signature Version 2 (HMAC-SHA1) is refused too: SigV4 only.
    assert sigv2.status_code == 403, sigv2.text


def sigv2_headers(access_key: str, secret_key: str, method: str, path: str) -> dict[str, str]:
    """Headers of an S3 request signed with AWS Signature Version 2 (the legacy scheme)."""
    date = email.utils.formatdate(usegmt=True)
    string_to_sign = f"{method}\n\n\n{date}\n{path}"
    digest = hmac.new(secret_key.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return {"Date": date, "Authorization": f"AWS {access_key}:{base64.b64encode(digest).decode()}"}


def test_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proxy = LocalS3Proxy(tmp_path / "s3", port)
        with pytest.raises(LocalServerError, match="already in use"):
            proxy.start()
    assert not proxy.status().running


def test_server_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    empty = tmp_path / "no-jars"
    empty.mkdir()
    proxy = LocalS3Proxy(tmp_path / "s3", free_port(), jars_dir=empty)
    with pytest.raises(
        LocalServerError, match=r"exited during start-up(.|\n)*org\.gaul\.s3proxy\.Main"
    ):
        proxy.start(timeout_s=30)
    assert not proxy.status().running
    assert not proxy.pid_path.exists()


def test_missing_java_is_a_configuration_error(tmp_path: Path) -> None:
    from darkroom_common.errors import ConfigurationError

    proxy = LocalS3Proxy(tmp_path / "s3", free_port(), java="no-such-java-binary")
    with pytest.raises(ConfigurationError, match="Java"):
        proxy.start()


def test_stale_pid_file_of_another_process_is_not_ours(tmp_path: Path) -> None:
    proxy = LocalS3Proxy(tmp_path / "s3", free_port())
    proxy.state_dir.mkdir(parents=True)
    proxy.pid_path.write_text(f"{os.getpid()}\n")  # this pytest process: alive, not S3Proxy
    assert not proxy.status().running
    assert proxy.stop() is False  # and it must not signal us
    proxy.pid_path.write_text("not a pid\n")
    assert not proxy.status().running


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--state-dir", str(tmp_path / "s3"), "--port", str(free_port())]
    try:
        assert main(["status", *args]) == 3
        assert main(["start", *args]) == 0
        assert "S3Proxy running" in capsys.readouterr().out
        assert main(["status", *args]) == 0
    finally:
        assert main(["stop", *args]) == 0
    assert "S3Proxy stopped" in capsys.readouterr().out


def test_ensure_jars_is_cached() -> None:
    folder = ensure_jars("s3proxy")
    began = time.monotonic()
    assert ensure_jars("s3proxy") == folder
    assert time.monotonic() - began < 1
    assert any(p.name.startswith("s3proxy-") for p in folder.glob("*.jar"))
