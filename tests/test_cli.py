"""The ``mmoda`` command, run as a separate process against the real local dispatcher."""
import os
import secrets
import signal
import subprocess
import sys
import uuid

import jwt
import numpy as np
import pytest
from astropy.io import fits

from astroquery_mmoda.cli import main
from tests.interrupt_helpers import default_sigint

COMMANDS = [[], ["login"], ["token"], ["token", "refresh"], ["instruments"], ["products"],
            ["parameters"], ["get"], ["jobs"], ["job"]]
# A file-backed keyring, so that `login --store` and a later command share it.
FILE_KEYRING = '''
import json
import os
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keyring.json")

    def _load(self):
        try:
            with open(self.path) as stream:
                return json.load(stream)
        except FileNotFoundError:
            return {}

    def get_password(self, service, username):
        return self._load().get(service + "|" + username)

    def set_password(self, service, username, password):
        data = self._load()
        data[service + "|" + username] = password
        with open(self.path, "w") as stream:
            json.dump(data, stream)

    def delete_password(self, service, username):
        data = self._load()
        if data.pop(service + "|" + username, None) is None:
            raise PasswordDeleteError(service)
        with open(self.path, "w") as stream:
            json.dump(data, stream)
'''


def unique_source():
    """A src_name that gives a fresh job id (jobs with equal parameters share one)."""
    return f"cli-{uuid.uuid4().hex[:12]}"


class Cli:
    """Runs ``python -m astroquery_mmoda.cli`` in a sandbox: its own HOME, cache and cwd."""

    def __init__(self, tmp_path, server, token):
        self.server = server
        self.token = token
        self.cwd = tmp_path / "work"
        self.home = tmp_path / "home"
        for folder in (self.cwd, self.home, tmp_path / "cache", tmp_path / "keyring"):
            folder.mkdir()
        (tmp_path / "keyring" / "file_keyring.py").write_text(FILE_KEYRING)
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("ODA_TOKEN", "XDG_CONFIG_HOME") and "proxy" not in key.lower()}
        self.env.update(HOME=str(self.home), XDG_CACHE_HOME=str(tmp_path / "cache"),
                        PYTHONPATH=os.pathsep.join([str(tmp_path / "keyring")]
                                                   + [p for p in [os.environ.get("PYTHONPATH")] if p]),
                        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", ODA_TOKEN=token)
        self.secrets = [token]

    def command(self, *args, server=True):
        return [sys.executable, "-m", "astroquery_mmoda.cli",
                *(["--server", self.server] if server else []), *args]

    def check_secret_free(self, *texts):
        for text in texts:
            for secret in self.secrets:
                # the claims and the signature: never shown, whole or in part
                for part in [secret] + secret.split(".")[1:]:
                    assert part not in text

    def __call__(self, *args, env=None, server=True):
        environment = dict(self.env, **(env or {}))
        environment = {key: value for key, value in environment.items() if value is not None}
        done = subprocess.run(self.command(*args, server=server), cwd=self.cwd, env=environment,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        self.check_secret_free(done.stdout, done.stderr)
        return done


def error_line(done):
    """The one error line of a failed command (notes and warnings may come before it)."""
    lines = done.stderr.splitlines()
    errors = [line for line in lines if line.startswith("mmoda: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    assert "Traceback" not in done.stderr
    return errors[0]


def fields(stdout):
    """The ``key: value`` lines of an output."""
    pairs = (line.split(":", 1) for line in stdout.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture
def cli(tmp_path, local_dispatcher, mmoda_token):
    return Cli(tmp_path, local_dispatcher.url, mmoda_token("general"))


@pytest.fixture
def offline_cli(tmp_path):
    token = jwt.encode({"sub": "x@example.org", "roles": "general", "exp": 4102444800},
                       secrets.token_hex(32), algorithm="HS256")
    return Cli(tmp_path, "http://127.0.0.1:9", token)


@pytest.fixture
def backend(local_dispatcher):
    local_dispatcher.set_backend_status(None)
    try:
        yield local_dispatcher
    finally:
        local_dispatcher.set_backend_status(None)


# -- in-process pieces ------------------------------------------------------------------

def test_main_returns_usage_code(capsys):
    assert main(["nosuchcommand"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "usage: mmoda" in capsys.readouterr().out


# -- help and bad arguments (no server needed) -----------------------------------------------

@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mmoda")
def test_help_of_every_command(offline_cli, command):
    done = offline_cli(*command, "--help", server=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {' '.join(['mmoda'] + command)}")
    assert done.stderr == ""


@pytest.mark.parametrize("args, expected", [
    (["nosuchcommand"], "invalid choice"),
    ([], "required: COMMAND"),
    (["get", "empty"], "required: PRODUCT"),
    (["products"], "required: INSTRUMENT"),
    (["get", "empty", "numerical", "p"], "expected key=value, not 'p'"),
    (["get", "empty", "numerical", "=5"], "expected key=value"),
    (["get", "empty", "numerical", "--timeout", "-1"], "must be positive"),
    (["get", "empty", "numerical", "--bogus"], "unrecognized arguments: --bogus"),
    (["job"], "required: JOB_ID"),
    (["token", "renew"], "invalid choice"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_bad_arguments_exit_2(offline_cli, args, expected):
    done = offline_cli(*args)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "usage: mmoda" in done.stderr
    assert "Traceback" not in done.stderr


def test_key_value_cannot_set_client_options(offline_cli):
    done = offline_cli("get", "empty", "numerical", "query_type=Dummy")
    assert done.returncode == 2
    assert "use --dummy" in error_line(done)
    done = offline_cli("get", "empty", "numerical", "p=1", "p=2")
    assert done.returncode == 2
    assert "'p' is given twice" in error_line(done)


# -- against the local dispatcher --------------------------------------------------------------

@pytest.mark.integration
def test_instruments_products_parameters(cli, server_expects):
    done = cli("instruments")
    assert done.returncode == 0, done.stderr
    assert {"empty", "empty-async", "empty-semi-async"} <= set(done.stdout.split())

    done = cli("products", "empty")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == server_expects("empty_products")

    done = cli("parameters", "empty", "numerical")
    assert done.returncode == 0, done.stderr
    header, rule, *rows = done.stdout.splitlines()
    assert header.split() == ["name", "default", "unit"]
    assert set(rule) == {"-", " "}
    table = {row.split()[0]: row.split()[1:] for row in rows}
    assert table["p"] == ["10.0", "W"]
    assert table["RA"][1] == "deg"
    assert "token" not in table and "sb" not in table

    done = cli("products", "nosuch")
    assert done.returncode == 2
    assert "nosuch" in error_line(done)


@pytest.mark.integration
def test_get_writes_the_fits_product(cli):
    done = cli("get", "empty", "numerical", "p=5", "--dummy", "-o", "out")
    assert done.returncode == 0, done.stderr
    paths = done.stdout.splitlines()
    assert paths and all(path.startswith("out") for path in paths)
    fits_files = [cli.cwd / path for path in paths if path.endswith(".fits")]
    assert len(fits_files) == 1
    with fits.open(fits_files[0]) as hdul:
        images = [hdu.data for hdu in hdul if hdu.data is not None and np.ndim(hdu.data) == 2]
        assert [image.shape for image in images] == [(100, 100)]

    # the same request again: from the cache; existing files are kept unless --overwrite
    again = cli("get", "empty", "numerical", "p=5", "--dummy", "-o", "out")
    assert again.returncode == 1
    assert "--overwrite" in error_line(again)
    again = cli("get", "empty", "numerical", "p=5", "--dummy", "-o", "out", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout


@pytest.mark.integration
def test_get_refuses_a_planted_symbolic_link(cli):
    done = cli("get", "empty", "numerical", "p=6", "--dummy", "-o", "first")
    assert done.returncode == 0, done.stderr
    names = [os.path.basename(path) for path in done.stdout.splitlines()]
    planted = cli.cwd / "planted"
    planted.mkdir()
    victim = cli.cwd / "victim"
    victim.write_text("precious")
    (planted / names[0]).symlink_to(victim)
    again = cli("get", "empty", "numerical", "p=6", "--dummy", "-o", "planted", "--overwrite")
    assert again.returncode == 1
    line = error_line(again)
    assert line.startswith("mmoda: error: nothing written: refused to write through the symbolic link")
    assert "--output" in line
    assert victim.read_text() == "precious" and os.listdir(planted) == [names[0]]


@pytest.mark.integration
def test_get_with_a_bad_parameter_name(cli):
    done = cli("get", "empty", "numerical", "pp=5", "--dummy")
    assert done.returncode == 2
    line = error_line(done)
    assert "'pp'" in line and "did you mean 'p'" in line
    assert done.stdout == ""


@pytest.mark.integration
def test_out_of_range_value_is_the_servers_message(cli):
    done = cli("get", "empty", "numerical", "p=900", "--dummy")
    assert done.returncode == 2
    assert "restricted to 800" in error_line(done)


@pytest.mark.integration
def test_refused_without_token_is_exit_3(cli):
    done = cli("get", "empty", "numerical", "p=5", "--dummy", env={"ODA_TOKEN": None})
    assert done.returncode == 3
    assert "403" in error_line(done)


@pytest.mark.integration
def test_failing_job_is_exit_1_with_the_servers_message(cli, server_expects):
    done = cli("get", "empty", "failing", "--dummy")
    assert done.returncode == 1
    assert server_expects("failing_job_reason") in error_line(done)


@pytest.mark.integration
def test_async_job_submit_list_resume(cli, backend):
    source = unique_source()
    done = cli("get", "empty-async", "dummy", f"src_name={source}", "--no-wait")
    assert done.returncode == 0, done.stderr
    submitted = fields(done.stdout)
    job_id, session_id = submitted["job_id"], submitted["session_id"]
    assert submitted["status"] == "submitted" and len(session_id) == 16
    assert f"mmoda job {job_id} --session-id {session_id} --wait" in done.stderr

    done = cli("jobs")
    assert done.returncode == 0, done.stderr
    header, _, *rows = done.stdout.splitlines()
    assert header.split()[:5] == ["job_id", "session_id", "instrument", "product", "status"]
    assert [row.split()[:5] for row in rows] == [[job_id, session_id, "empty-async", "dummy",
                                                  "submitted"]]

    done = cli("job", job_id)
    assert done.returncode == 0, done.stderr
    assert fields(done.stdout)["status"] == "submitted"
    assert fields(done.stdout)["session_id"] == session_id

    backend.finish_job(job_id, session_id)
    done = cli("job", job_id, "--wait", "-o", "async")
    assert done.returncode == 0, done.stderr
    # the test back-end's asynchronous products are empty
    assert done.stdout == ""
    assert f"MMODA job {job_id} is done but returned no products" in done.stderr
    assert "mmoda: warning: " in done.stderr and "mock comment" in done.stderr

    # finished jobs leave the journal
    done = cli("jobs")
    assert done.returncode == 0 and done.stdout == ""
    assert "no unfinished jobs" in done.stderr
    done = cli("job", job_id)
    assert done.returncode == 2
    assert "not among the unfinished jobs" in error_line(done)


@pytest.mark.integration
def test_timeout_is_exit_4_with_how_to_resume(cli, backend):
    done = cli("get", "empty-async", "dummy", f"src_name={unique_source()}", "--timeout", "0.2",
               "-o", "later")
    assert done.returncode == 4
    line = error_line(done)
    assert "still submitted" in line
    assert "Resume it with: mmoda job " in line and line.endswith("--wait -o later")


@pytest.mark.integration
def test_interrupt_is_exit_130_with_how_to_resume(cli, backend):
    process = subprocess.Popen(
        cli.command("-v", "get", "empty-async", "dummy", f"src_name={unique_source()}"),
        cwd=cli.cwd, env=cli.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "waiting for it" in line:
                break
        process.send_signal(signal.SIGINT)
        try:
            stdout, rest = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # a first Ctrl-C swallowed by clean-up code: press again
            process.send_signal(signal.SIGINT)
            stdout, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    stderr = "".join(lines) + rest
    cli.check_secret_free(stdout, stderr)
    assert process.returncode == 130
    assert "mmoda: error: interrupted; MMODA job" in stderr
    assert "Resume it with: mmoda job" in stderr


@pytest.mark.integration
def test_token_shows_the_owner_never_the_token(cli):
    done = cli("token")
    assert done.returncode == 0, done.stderr
    info = fields(done.stdout)
    assert info["subject"] == "tester@example.org"
    assert info["roles"] == "general"
    assert info["source"] == "ODA_TOKEN"
    assert "UTC (in 2" in info["expires"]  # about 24 h left

    done = cli("-vv", "token")
    assert done.returncode == 0
    assert "mmoda: debug: Logged in to MMODA as tester@example.org" in done.stderr

    done = cli("token", env={"ODA_TOKEN": None})
    assert done.returncode == 3
    assert "not logged in" in error_line(done)


@pytest.mark.integration
def test_expired_token_is_skipped_and_reported(cli, mmoda_token):
    expired = mmoda_token(expires_in=-60)
    cli.secrets.append(expired)
    done = cli("token", env={"ODA_TOKEN": expired})
    assert done.returncode == 3
    assert "expired token in ODA_TOKEN" in error_line(done)
    # other commands go on anonymously
    done = cli("instruments", env={"ODA_TOKEN": expired})
    assert done.returncode == 0, done.stderr


@pytest.mark.integration
def test_token_refresh_needs_the_role(cli):
    done = cli("token", "refresh")
    assert done.returncode == 3
    assert "refresh-tokens" in error_line(done)


@pytest.mark.integration
def test_debug_output_has_no_token(cli):
    done = cli("-vv", "get", "empty", "numerical", "p=7", "--dummy", "-o", "debug")
    assert done.returncode == 0, done.stderr
    assert "mmoda: debug: HTTP GET" in done.stderr
    # a traceback at -vv, token-free too (checked by the runner)
    done = cli("-vv", "get", "empty", "failing", "--dummy")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("mmoda: error: ")


@pytest.mark.integration
def test_login_from_file_and_keyring(cli, tmp_path):
    token_file = tmp_path / "token.txt"
    token_file.write_text(cli.token + "\n")
    no_env = {"ODA_TOKEN": None}

    done = cli("login", env=no_env)
    assert done.returncode == 3
    assert "No usable MMODA token" in error_line(done)

    done = cli("login", "--token-file", str(token_file), env=no_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tester@example.org, roles: general; expires in ")

    keyring = {"ODA_TOKEN": None, "PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring"}
    done = cli("login", "--token-file", str(token_file), "--store", env=keyring)
    assert done.returncode == 0, done.stderr
    done = cli("token", env=keyring)
    assert done.returncode == 0, done.stderr
    assert fields(done.stdout)["source"] == "keyring"

    (cli.home / ".oda-token").write_text(cli.token)
    (cli.home / ".oda-token").chmod(0o600)
    done = cli("token", env=no_env)
    assert done.returncode == 0, done.stderr
    assert fields(done.stdout)["source"] == str(cli.home / ".oda-token")

    done = cli("login", "--token-file", str(tmp_path / "missing"), env=no_env)
    assert done.returncode == 3
    assert "cannot read the token file" in error_line(done)


@pytest.fixture
def integral_cli(tmp_path, integral_dispatcher):
    return Cli(tmp_path, integral_dispatcher.url, integral_dispatcher.mint_token("general"))


@pytest.mark.integration
@pytest.mark.integral
def test_get_writes_xspec_ready_spectra_of_a_catalog_file(integral_cli):
    from astropy.table import Table

    from astroquery_mmoda.testing.integral_sky import ISGRI_OBSERVATION

    field = [f"RA={ISGRI_OBSERVATION.ra}", f"DEC={ISGRI_OBSERVATION.dec}",
             f"T1={ISGRI_OBSERVATION.start}", f"T2={ISGRI_OBSERVATION.end}", "osa_version=OSA11.2"]
    done = integral_cli("get", "isgri", "isgri_image", *field, "max_pointings=10", "--dummy",
                        "-o", "image")
    assert done.returncode == 0, done.stderr
    (catalog_file,) = [path for path in done.stdout.splitlines() if path.endswith(".ecsv")]
    catalog = Table.read(integral_cli.cwd / catalog_file)
    chosen = catalog[catalog["src_names"] == "OAO 1657-415"]
    chosen.write(integral_cli.cwd / "chosen.ecsv")

    done = integral_cli("get", "isgri", "isgri_spectrum", *field, "--catalog", "chosen.ecsv",
                        "--dummy", "-o", "spectra")
    assert done.returncode == 0, done.stderr
    paths = done.stdout.splitlines()
    assert "spectra/OAO_1657-415_spectrum.fits" in paths
    assert len(paths) % 3 == 0 and all(path.endswith(("_spectrum.fits", "_arf.fits", "_rmf.fits"))
                                       for path in paths)
    with fits.open(integral_cli.cwd / "spectra/OAO_1657-415_spectrum.fits") as hdul:
        assert hdul[1].header["RESPFILE"] == "OAO_1657-415_rmf.fits"
        assert hdul[1].header["ANCRFILE"] == "OAO_1657-415_arf.fits"
        assert hdul[1].header["NAME"] == "OAO 1657-415"

    missing = integral_cli("get", "isgri", "isgri_spectrum", *field, "--catalog", "nosuch.ecsv")
    assert missing.returncode == 2
    assert "the catalog file nosuch.ecsv does not exist" in error_line(missing)
