"""Unit tests of where tokens live (`astroquery_mmoda.auth`, `astroquery_mmoda.token_sources`); no network."""
import logging
import os
import pickle
import stat
import sys
import time
import types
import warnings

import astropy.units as u
import keyring
import keyring.errors
import pytest
from astroquery.exceptions import AuthenticationWarning
from keyring.backend import KeyringBackend
from keyring.backends import fail

from astroquery_mmoda import auth
from astroquery_mmoda.auth import (FRONTEND_URL, KEYRING_USERNAME, TokenInfo, TokenManager,
                                   decode_token, keyring_service_name)
from astroquery_mmoda.exceptions import LoginError, TokenExpiredError
from tests.auth_helpers import mint, signature_windows

SERVER = "https://mmoda.example.org/dispatch-data"
SERVICE = "astroquery:mmoda.example.org.token"
REAL_IS_INTERACTIVE = auth.is_interactive


class MemoryKeyring(KeyringBackend):
    """A keyring kept in a dictionary."""

    priority = 1

    def __init__(self):
        super().__init__()
        self.passwords = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("not found") from None


class LockedKeyring(KeyringBackend):
    """A keyring whose every operation fails, as a locked collection does."""

    priority = 1

    def get_password(self, service, username):
        raise keyring.errors.KeyringError("the collection is locked")

    def set_password(self, service, username, password):
        raise keyring.errors.PasswordSetError("the collection is locked")

    def delete_password(self, service, username):
        raise keyring.errors.KeyringError("the collection is locked")


@pytest.fixture(autouse=True)
def ring():
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def places(monkeypatch, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.chdir(work)
    monkeypatch.delenv("ODA_TOKEN", raising=False)
    monkeypatch.setattr(auth, "is_interactive", lambda: False)
    return types.SimpleNamespace(home=home, work=work, cwd_file=work / ".oda-token",
                                 home_file=home / ".oda-token")


@pytest.fixture
def manager():
    return TokenManager(server_url=lambda: SERVER)


def write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)


# -- discovery -----------------------------------------------------------------

def test_keyring_service_name():
    assert keyring_service_name(SERVER) == SERVICE
    assert keyring_service_name("https://www.astro.unige.ch/mmoda/dispatch-data") == \
        "astroquery:www.astro.unige.ch.token"
    assert keyring_service_name("http://127.0.0.1:8000/") == "astroquery:127.0.0.1:8000.token"
    assert keyring_service_name("http://[::1]:8000") == "astroquery:[::1]:8000.token"
    with pytest.raises(ValueError):
        keyring_service_name("not a url")


def test_keyring_service_follows_server(ring):
    url = ["https://one.example.org/dispatch-data"]
    manager = TokenManager(server_url=lambda: url[0])
    ring.set_password("astroquery:two.example.org:8443.token", KEYRING_USERNAME, mint("bob@example.org"))
    with pytest.raises(LoginError):
        manager.login()
    url[0] = "https://two.example.org:8443/dispatch-data"
    assert manager.keyring_service == "astroquery:two.example.org:8443.token"
    assert manager.login().subject == "bob@example.org"


def test_keyring_service_overrides(ring):
    ring.set_password("custom", KEYRING_USERNAME, mint("bob@example.org"))
    assert TokenManager(server_url=SERVER, keyring_service="custom").login().source == "keyring"
    by_url = TokenManager(server_url=SERVER, keyring_service=lambda url: "custom")
    assert by_url.keyring_service == "custom"
    assert by_url.login().subject == "bob@example.org"


def test_default_server_is_conf_server():
    from astroquery_mmoda import conf

    with conf.set_temp("server", "http://127.0.0.1:9999/dispatch-data"):
        assert TokenManager().keyring_service == "astroquery:127.0.0.1:9999.token"


SOURCES = ["argument", "ODA_TOKEN", "keyring", "cwd", "home", "prompt"]


@pytest.mark.parametrize("first", range(len(SOURCES)))
def test_discovery_order(first, monkeypatch, ring, places):
    """Each source wins over every later one and loses to every earlier one."""
    present = SOURCES[first:]
    tokens = {name: mint(f"{name.lower()}@example.org") for name in SOURCES}
    if "ODA_TOKEN" in present:
        monkeypatch.setenv("ODA_TOKEN", tokens["ODA_TOKEN"])
    if "keyring" in present:
        ring.set_password(SERVICE, KEYRING_USERNAME, tokens["keyring"])
    if "cwd" in present:
        write(places.cwd_file, tokens["cwd"] + "\n")
    if "home" in present:
        write(places.home_file, tokens["home"] + "\n")
    monkeypatch.setattr(auth, "is_interactive", lambda: True)
    manager = TokenManager(server_url=lambda: SERVER, prompt=lambda text: tokens["prompt"])
    argument = tokens["argument"] if "argument" in present else None

    info = manager.login(argument)

    name = SOURCES[first]
    assert info.subject == f"{name.lower()}@example.org"
    assert manager.token == tokens[name]
    expected_source = {"cwd": str(places.cwd_file), "home": str(places.home_file)}.get(name, name)
    assert info.source == expected_source
    assert manager.info() is info


def test_token_files_override(tmp_path):
    path = tmp_path / "elsewhere" / "token.txt"
    path.parent.mkdir()
    write(path, mint("carol@example.org"))
    manager = TokenManager(server_url=SERVER, token_files=lambda: [path])
    info = manager.login()
    assert info.source == str(path)
    assert TokenManager(server_url=SERVER, token_files=[path]).login().subject == "carol@example.org"


def test_file_token_is_stripped(manager, places):
    token = mint()
    write(places.home_file, "\n  " + token + " \r\n")
    manager.login()
    assert manager.token == token


def test_blank_values_are_ignored(manager, monkeypatch, ring, places, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    monkeypatch.setenv("ODA_TOKEN", "  \n")
    ring.set_password(SERVICE, KEYRING_USERNAME, "   ")
    write(places.cwd_file, "\n")
    token = mint()
    write(places.home_file, token)
    info = manager.login("   ")
    assert info.source == str(places.home_file)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_expired_sources_are_skipped_with_info(manager, monkeypatch, ring, places, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    monkeypatch.setenv("ODA_TOKEN", mint(hours=-1))
    ring.set_password(SERVICE, KEYRING_USERNAME, mint(hours=-3))
    write(places.cwd_file, mint(hours=-0.1))
    write(places.home_file, mint("bob@example.org"))
    info = manager.login()
    assert info.subject == "bob@example.org"
    skipped = [r for r in caplog.records if "expired" in r.getMessage() and "Skipping" in r.getMessage()]
    assert [r.levelno for r in skipped] == [logging.INFO] * 3
    assert "ODA_TOKEN" in skipped[0].getMessage()
    assert "keyring" in skipped[1].getMessage()
    assert str(places.cwd_file) in skipped[2].getMessage()


def test_only_expired_tokens_found(manager, monkeypatch):
    monkeypatch.setenv("ODA_TOKEN", mint(hours=-1))
    with pytest.raises(LoginError, match="expired token in ODA_TOKEN"):
        manager.login()


def test_explicit_expired_token_is_refused(manager, monkeypatch):
    monkeypatch.setenv("ODA_TOKEN", mint())
    with pytest.raises(TokenExpiredError) as error:
        manager.login(mint(hours=-2))
    message = str(error.value)
    assert "expired 2.0 h ago" in message
    assert FRONTEND_URL in message and "API token" in message
    assert "refresh_token" in message and "refresh-tokens" in message
    assert not manager.logged_in


@pytest.mark.parametrize("bad", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.bnVsbA.sig"])
def test_malformed_sources_are_skipped_with_warning(bad, manager, monkeypatch, places, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    monkeypatch.setenv("ODA_TOKEN", bad)
    write(places.cwd_file, bad)
    write(places.home_file, mint())
    info = manager.login()
    assert info.source == str(places.home_file)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert "ODA_TOKEN" in warned[0].getMessage()
    assert str(places.cwd_file) in warned[1].getMessage()
    assert all(bad not in r.getMessage() for r in caplog.records)


def test_malformed_argument(manager, monkeypatch):
    monkeypatch.setenv("ODA_TOKEN", mint())
    with pytest.raises(LoginError, match="not a JWT"):
        manager.login("garbage")
    with pytest.raises(LoginError, match="string"):
        manager.login(12345)
    assert not manager.logged_in


def test_unreadable_token_file_is_skipped(manager, places, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    places.cwd_file.write_bytes(b"\xff\xfe")
    write(places.home_file, mint())
    assert manager.login().source == str(places.home_file)
    assert any(str(places.cwd_file) in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_group_readable_file_is_reported(manager, places, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    write(places.home_file, mint(), mode=0o644)
    manager.login()
    if os.name == "posix":
        assert any("chmod 600" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_same_file_in_cwd_and_home_is_read_once(manager, monkeypatch, places, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    monkeypatch.chdir(places.home)
    write(places.home_file, mint(hours=-1))
    with pytest.raises(LoginError):
        manager.login()
    assert len([r for r in caplog.records if "Skipping" in r.getMessage()]) == 1


# -- prompting -------------------------------------------------------------------

def test_no_token_non_interactive_gives_guidance(manager):
    with pytest.raises(LoginError) as error:
        manager.login()
    message = str(error.value)
    for text in ("token=", "ODA_TOKEN", SERVICE, KEYRING_USERNAME, "store_token=True",
                 ".oda-token", FRONTEND_URL, '"API token"'):
        assert text in message


def test_prompt_when_interactive(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    token = mint()
    asked = []
    manager = TokenManager(server_url=SERVER, interactive=lambda: True,
                           prompt=lambda text: asked.append(text) or f"  {token}\n")
    info = manager.login()
    assert info.source == "prompt"
    assert manager.token == token
    assert len(asked) == 1
    assert any(FRONTEND_URL in r.getMessage() for r in caplog.records)


def test_default_prompt_is_getpass(monkeypatch):
    token = mint()
    monkeypatch.setattr(auth, "is_interactive", lambda: True)
    monkeypatch.setattr(auth.getpass, "getpass", lambda text: token)
    assert TokenManager(server_url=SERVER).login().source == "prompt"


def test_prompt_not_used_when_a_source_has_a_token(monkeypatch):
    monkeypatch.setenv("ODA_TOKEN", mint())

    def prompt(text):
        raise AssertionError("prompted")

    manager = TokenManager(server_url=SERVER, interactive=lambda: True, prompt=prompt)
    assert manager.login().source == "ODA_TOKEN"


@pytest.mark.parametrize("answer", ["", "   ", EOFError])
def test_prompt_empty_answer(answer):
    def prompt(text):
        if answer is EOFError:
            raise EOFError
        return answer

    manager = TokenManager(server_url=SERVER, interactive=lambda: True, prompt=prompt)
    with pytest.raises(LoginError, match="No token entered"):
        manager.login()


def test_prompt_expired_and_malformed():
    expired = TokenManager(server_url=SERVER, interactive=lambda: True, prompt=lambda t: mint(hours=-1))
    with pytest.raises(TokenExpiredError):
        expired.login()
    malformed = TokenManager(server_url=SERVER, interactive=lambda: True, prompt=lambda t: "garbage")
    with pytest.raises(LoginError, match="not a JWT"):
        malformed.login()


def test_reenter_token_skips_sources_and_prompts(monkeypatch, ring, places):
    monkeypatch.setenv("ODA_TOKEN", mint("env@example.org"))
    ring.set_password(SERVICE, KEYRING_USERNAME, mint("ring@example.org"))
    write(places.cwd_file, mint("cwd@example.org"))
    write(places.home_file, mint("home@example.org"))
    manager = TokenManager(server_url=SERVER, interactive=lambda: True,
                           prompt=lambda text: mint("typed@example.org"))
    info = manager.login(reenter_token=True)
    assert (info.subject, info.source) == ("typed@example.org", "prompt")
    # An explicit token still comes first.
    assert manager.login(mint("arg@example.org"), reenter_token=True).source == "argument"


def test_reenter_token_non_interactive(manager, monkeypatch):
    monkeypatch.setenv("ODA_TOKEN", mint())
    with pytest.raises(LoginError, match="reenter_token=True needs an interactive session"):
        manager.login(reenter_token=True)


def test_is_interactive(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(isatty=lambda: False))
    assert not REAL_IS_INTERACTIVE()
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(isatty=lambda: True))
    assert REAL_IS_INTERACTIVE()
    monkeypatch.setattr(sys, "stdin", None)
    assert not REAL_IS_INTERACTIVE()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: object()))
    assert REAL_IS_INTERACTIVE()


# -- keyring storage ---------------------------------------------------------------

def test_store_token_saves_to_keyring(manager, ring):
    token = mint()
    manager.login(token, store_token=True)
    assert ring.passwords == {(SERVICE, KEYRING_USERNAME): token}
    info = TokenManager(server_url=SERVER).login()
    assert info.source == "keyring"


def test_store_token_saves_discovered_token(manager, monkeypatch, ring):
    token = mint()
    monkeypatch.setenv("ODA_TOKEN", token)
    manager.login(store_token=True)
    assert ring.passwords[(SERVICE, KEYRING_USERNAME)] == token


@pytest.mark.parametrize("backend", [fail.Keyring, LockedKeyring])
def test_store_token_keyring_failure_warns(backend, manager):
    keyring.set_keyring(backend())
    token = mint()
    with pytest.warns(AuthenticationWarning, match="keyrings.alt") as record:
        info = manager.login(token, store_token=True)
    assert "session only" in str(record[0].message)
    assert manager.token == token and info.source == "argument"


@pytest.mark.parametrize("backend", [fail.Keyring, LockedKeyring])
def test_broken_keyring_is_skipped_silently_on_discovery(backend, manager, places):
    keyring.set_keyring(backend())
    write(places.home_file, mint())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert manager.login().source == str(places.home_file)


def test_logout(manager):
    manager.login(mint())
    manager.logout()
    assert manager.token is None and not manager.logged_in
    with pytest.raises(LoginError, match="Not logged in"):
        manager.info()
    manager.logout()


def test_logout_forget_deletes_keyring_only(manager, monkeypatch, ring, places, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    token = mint()
    monkeypatch.setenv("ODA_TOKEN", mint("env@example.org"))
    write(places.home_file, mint("home@example.org"))
    manager.login(token, store_token=True)
    manager.logout(forget=True)
    assert ring.passwords == {}
    assert os.environ["ODA_TOKEN"] and places.home_file.exists()
    assert any("not removed" in r.getMessage() and "ODA_TOKEN" in r.getMessage() for r in caplog.records)
    manager.logout(forget=True)  # nothing stored: no warning


def test_logout_forget_keyring_failure_warns(manager):
    manager.login(mint())
    keyring.set_keyring(LockedKeyring())
    with pytest.warns(AuthenticationWarning, match="Could not delete"):
        manager.logout(forget=True)
    assert not manager.logged_in


# -- replacing (after a refresh) -----------------------------------------------------

def renewed(token, hours=24 * 8, **claims):
    old = decode_token(token)
    return mint(old["sub"], hours=hours, roles=old["roles"], **claims)


def test_replace_keyring_origin_writes_back(manager, ring):
    old = mint(roles="general,refresh-tokens")
    ring.set_password(SERVICE, KEYRING_USERNAME, old)
    manager.login()
    new = renewed(old)
    info = manager.replace(new, store=True)
    assert info.source == "refresh" and manager.info() is info
    assert manager.token == new
    assert ring.passwords[(SERVICE, KEYRING_USERNAME)] == new


def test_replace_without_store_changes_nothing_stored(manager, ring):
    old = mint()
    ring.set_password(SERVICE, KEYRING_USERNAME, old)
    manager.login()
    manager.replace(renewed(old))
    assert ring.passwords[(SERVICE, KEYRING_USERNAME)] == old


@pytest.mark.parametrize("where", ["cwd_file", "home_file"])
def test_replace_file_origin_rewrites_file_0600(where, manager, monkeypatch, places, ring):
    path = getattr(places, where)
    old = mint()
    write(path, old + "\n", mode=0o644)
    manager.login()
    monkeypatch.chdir(places.home.parent)  # the file is remembered, not the working directory
    modes = []
    real_replace = os.replace

    def spying_replace(src, dst):
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        return real_replace(src, dst)

    monkeypatch.setattr(auth.os, "replace", spying_replace)
    new = renewed(old)
    previous_umask = os.umask(0)
    try:
        manager.replace(new, store=True)
    finally:
        os.umask(previous_umask)
    assert path.read_text() == new + "\n"
    if os.name == "posix":
        assert modes == [0o600]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ring.passwords == {}
    assert sorted(p.name for p in path.parent.iterdir()) == [".oda-token"]


def test_replace_file_write_failure_warns(places):
    sub = places.work / "sub"
    sub.mkdir()
    path = sub / ".oda-token"
    old = mint()
    write(path, old)
    manager = TokenManager(server_url=SERVER, token_files=[path])
    manager.login()
    path.unlink()
    sub.rmdir()
    new = renewed(old)
    with pytest.warns(AuthenticationWarning, match="session only"):
        manager.replace(new, store=True)
    assert manager.token == new


@pytest.mark.parametrize("origin", ["argument", "ODA_TOKEN", "prompt"])
def test_replace_other_origins_store_to_keyring(origin, monkeypatch, ring):
    old = mint()
    if origin == "ODA_TOKEN":
        monkeypatch.setenv("ODA_TOKEN", old)
    manager = TokenManager(server_url=SERVER, interactive=lambda: origin == "prompt", prompt=lambda t: old)
    manager.login(old if origin == "argument" else None)
    assert manager.info().source == origin
    new = renewed(old)
    manager.replace(new, store=True)
    assert ring.passwords == {(SERVICE, KEYRING_USERNAME): new}
    if origin == "ODA_TOKEN":
        assert os.environ["ODA_TOKEN"] == old
    newer = renewed(old, hours=24 * 9)
    manager.replace(newer, store=True)
    assert ring.passwords == {(SERVICE, KEYRING_USERNAME): newer}


def test_replace_store_keyring_failure_warns(manager):
    old = mint()
    manager.login(old)
    keyring.set_keyring(fail.Keyring())
    new = renewed(old)
    with pytest.warns(AuthenticationWarning, match="Could not save"):
        manager.replace(new, store=True)
    assert manager.token == new


def test_replace_refuses_other_subject(manager):
    old = mint()
    manager.login(old)
    with pytest.raises(LoginError, match="mallory@example.org") as error:
        manager.replace(mint("mallory@example.org", hours=48))
    assert "it is not used" in str(error.value)
    assert manager.token == old


def test_replace_refuses_earlier_expiry_and_garbage(manager):
    old = mint(hours=24)
    manager.login(old)
    with pytest.raises(LoginError, match="expire later"):
        manager.replace(mint(hours=1))
    with pytest.raises(LoginError, match="not a JWT"):
        manager.replace("garbage")
    with pytest.raises(LoginError, match="empty"):
        manager.replace("  ")
    assert manager.token == old


def test_replace_needs_login(manager):
    with pytest.raises(LoginError, match="Not logged in"):
        manager.replace(mint())


def test_replace_warns_about_lost_roles(manager, caplog):
    caplog.set_level(logging.DEBUG, logger="astroquery")
    manager.login(mint(roles="general,unige-hpc-full"))
    manager.replace(mint(hours=48, roles="general"))
    assert any("unige-hpc-full" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_refresh_calls_fetch_with_current_token(manager, ring):
    old = mint(roles=["general", "refresh-tokens"])
    ring.set_password(SERVICE, KEYRING_USERNAME, old)
    manager.login()
    new = renewed(old)
    seen = []
    info = manager.refresh(lambda token: seen.append(token) or new + "\n", store=True)
    assert seen == [old]
    assert info.source == "refresh"
    assert ring.passwords[(SERVICE, KEYRING_USERNAME)] == new


def test_refresh_needs_role_and_validity(manager, monkeypatch):
    def fetch(token):
        raise AssertionError("no request expected")

    with pytest.raises(LoginError, match="Not logged in"):
        manager.refresh(fetch)
    manager.login(mint(roles="general"))
    with pytest.raises(LoginError, match="refresh-tokens"):
        manager.refresh(fetch)
    manager.login(mint(roles="general,refresh-tokens", hours=1))
    later = time.time() + 2 * 3600
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(TokenExpiredError):
        manager.refresh(fetch)


# -- transport and expiry ---------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://www.astro.unige.ch/mmoda/dispatch-data/run_analysis",
                                 "HTTPS://example.org", "http://127.0.0.1:8000/run_analysis",
                                 "http://127.12.0.3/", "http://localhost:5000", "http://LOCALHOST",
                                 "http://[::1]:8000/api"])
def test_check_transport_allows(url, manager):
    manager.check_transport(url)
    TokenManager.check_transport(url)


@pytest.mark.parametrize("url", ["http://example.org/dispatch-data", "http://10.0.0.1:8000",
                                 "http://128.0.0.1", "ftp://127.0.0.1/", "example.org", "https://"])
def test_check_transport_refuses(url, manager):
    with pytest.raises(LoginError, match="Refusing"):
        manager.check_transport(url)


def test_check_transport_message_has_no_query(manager):
    token = mint()
    with pytest.raises(LoginError) as error:
        manager.check_transport(f"http://example.org/run_analysis?token={token}&x=1")
    assert token not in str(error.value) and "example.org" in str(error.value)


def test_expiry_warning_once_per_token(manager):
    assert manager.expiry_warning() is None
    manager.login(mint(hours=0.5))
    with pytest.warns(AuthenticationWarning, match="expires in 30 min") as record:
        message = manager.expiry_warning()
    assert len(record) == 1 and message == str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "expires in" in manager.expiry_warning()
        assert manager.expiry_warning(within_seconds=60) is None
    manager.login(mint(hours=0.4))
    with pytest.warns(AuthenticationWarning, match="refresh_token"):
        manager.expiry_warning(within_seconds=1 * u.h)


def test_expiry_warning_not_for_long_lived_token(manager):
    manager.login(mint(hours=5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert manager.expiry_warning() is None
    with pytest.warns(AuthenticationWarning):
        assert manager.expiry_warning(within_seconds=6 * 3600) is not None


# -- secrecy ---------------------------------------------------------------------------------

def test_pickled_manager_is_logged_out():
    manager = TokenManager(server_url=SERVER)
    token = mint()
    manager.login(token)
    data = pickle.dumps(manager)
    assert token.encode() not in data
    clone = pickle.loads(data)
    assert not clone.logged_in
    assert manager.token == token


def test_token_never_shown(monkeypatch, ring, places, caplog, capsys):
    """Log records, warnings, errors and reprs never contain a token or a piece of its signature."""
    caplog.set_level(logging.DEBUG, logger="astroquery")
    tokens = [mint(roles="general,refresh-tokens"), mint(hours=-1), mint("mallory@example.org", hours=48)]
    new = renewed(tokens[0])
    texts = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monkeypatch.setenv("ODA_TOKEN", tokens[1])
        write(places.cwd_file, tokens[1][:-6])
        manager = TokenManager(server_url=SERVER, interactive=lambda: True, prompt=lambda t: tokens[0])
        info = manager.login(store_token=True)
        texts += [str(info), repr(info), repr(manager), repr(info.claims)]
        for call in (lambda: manager.login(tokens[1]), lambda: manager.replace(tokens[2]),
                     lambda: manager.replace(tokens[0]), lambda: decode_token(tokens[0][:-1] + "*"),
                     lambda: manager.check_transport(f"http://example.org/?token={tokens[0]}"),
                     lambda: TokenInfo({"token": tokens[0]}, source="argument")):
            with pytest.raises(LoginError) as error:
                call()
            texts += [str(error.value), repr(error.value)]
        keyring.set_keyring(LockedKeyring())
        manager.login(tokens[0], store_token=True)
        manager.replace(new, store=True)
        later = time.time() + 8 * 24 * 3600 - 360
        monkeypatch.setattr(auth.time, "time", lambda: later)
        manager.expiry_warning()
        manager.logout(forget=True)
    texts += [str(w.message) for w in caught]
    assert len(caught) >= 3
    texts += [r.getMessage() for r in caplog.records]
    assert any(r.levelno == logging.INFO for r in caplog.records)
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    everything = "\n".join(texts)
    for token in tokens + [new]:
        assert token not in everything
    for token in tokens + [new]:
        for window in signature_windows(token):
            assert window not in everything
