"""The table of dispatcher versions and the rules of their virtual environments (no install)."""
import sys

import pytest

from astroquery_mmoda.testing import servers
from astroquery_mmoda.testing.servers import (ProvisioningError, available_servers, default_venv_dir,
                                              get_server, provision_dispatcher_venv, server_sources)

ARCHIVES = ("dispatcher-app-955494bf.tar.gz", "dispatcher-plugin-integral-9c4017c.tar.gz",
            "dispatcher-plugin-integral-all-sky-b453bf0.tar.gz",
            "dispatcher-plugin-nb2workflow-e902c3b.tar.gz")


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "vendor"
    folder.mkdir()
    for name in ARCHIVES + ("README.md", "dispatcher-plugin-unrelated-0123abc.tar.gz"):
        (folder / name).write_bytes(name.encode())
    return folder


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(servers.SOURCES_ENV, raising=False)
    monkeypatch.delenv(servers.VENV_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_servers_and_their_versions():
    assert get_server().name == "1.3.3"
    assert get_server("current").version == "1.3.6"
    assert get_server(get_server("current")) is get_server("current")
    assert str(get_server("current")) == "current (cdci-data-analysis 1.3.6)"
    with pytest.raises(ValueError, match="unknown MMODA server '1.2'; known: 1.3.3, current"):
        get_server("1.2")


def test_each_lock_file_pins_every_package():
    for spec in servers.SERVERS.values():
        lines = [line for line in spec.lock_file.read_text().splitlines()
                 if line and not line.startswith("#")]
        assert lines and all("==" in line and " @ " not in line for line in lines)
    current = get_server("current").lock_file.read_text().splitlines()
    assert "python-shell-colors==0.2.1" in current
    # the three packages from source archives are not pinned to PyPI releases
    assert not [line for line in current if line.lower().startswith(("cdci", "dispatcher"))]


def test_sources_from_a_folder_of_archives(sources):
    found = server_sources("current", sources)
    assert [path.rsplit("/", 1)[1] for path in found] == list(ARCHIVES)
    assert server_sources("1.3.3", sources) == []


def test_sources_from_the_environment_or_requirements(sources, monkeypatch):
    assert server_sources("current") is None
    assert available_servers() == ["1.3.3"]
    monkeypatch.setenv(servers.SOURCES_ENV, str(sources))
    assert available_servers() == ["1.3.3", "current"]
    requirements = ("cdci-data-analysis @ git+https://github.com/oda-hub/dispatcher-app@955494bf, "
                    "cdci_osa_plugin[extra,more] @ git+https://example.org/p.git")
    assert server_sources("current", requirements) == [
        "cdci-data-analysis @ git+https://github.com/oda-hub/dispatcher-app@955494bf",
        "cdci_osa_plugin[extra,more] @ git+https://example.org/p.git"]


def test_incomplete_or_missing_folder_gives_no_sources(sources, tmp_path):
    (sources / ARCHIVES[1]).unlink()
    assert server_sources("current", sources) is None
    assert server_sources("current", tmp_path / "nowhere") is None


def test_venv_name_follows_server_lock_and_sources(sources, tmp_path, monkeypatch):
    old = default_venv_dir("1.3.3")
    assert old.parent == tmp_path / "cache" / "astroquery_mmoda"
    assert old.name.startswith("dispatcher-1.3.3-")
    assert old.name.endswith(f"-py{sys.version_info.major}{sys.version_info.minor}")
    current = default_venv_dir("current", sources)
    assert current.name.startswith("dispatcher-current-")
    (sources / ARCHIVES[0]).write_bytes(b"another commit")
    assert default_venv_dir("current", sources) != current
    monkeypatch.setenv(servers.VENV_ENV, str(tmp_path / "mine"))
    assert default_venv_dir("1.3.3") == tmp_path / "mine"
    assert default_venv_dir("current", sources) != tmp_path / "mine"


def test_current_without_sources_is_a_clear_error(tmp_path):
    with pytest.raises(ProvisioningError, match="MMODA_DISPATCHER_SOURCES"):
        provision_dispatcher_venv(tmp_path / "venv", server="current")
    assert not (tmp_path / "venv").exists()


def test_a_folder_it_did_not_make_is_never_deleted(tmp_path):
    folder = tmp_path / "someone-elses"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(ProvisioningError, match="was not made by astroquery_mmoda.testing"):
        provision_dispatcher_venv(folder)
    assert (folder / "precious.txt").read_text() == "keep me"


def test_the_environment_of_another_server_is_never_deleted(tmp_path):
    folder = tmp_path / "venv"
    folder.mkdir()
    (folder / servers._OWNER_MARKER).write_text("current (cdci-data-analysis 1.3.6)\n")
    (folder / servers._READY_MARKER).write_text("0123456789ab")
    with pytest.raises(ProvisioningError, match="holds the MMODA server current"):
        provision_dispatcher_venv(folder, server="1.3.3")
    assert (folder / servers._READY_MARKER).read_text() == "0123456789ab"
