"""Unit tests of the journal of unfinished jobs (`astroquery_mmoda.journal`)."""
import json
import os
import threading
from datetime import datetime, timezone

import pytest
from astropy.table import Table
from astroquery.exceptions import CorruptDataWarning

from astroquery_mmoda.journal import JOURNAL_COLUMNS, JobJournal
from tests.cache_helpers import URL, key_of, mint_token


def record(journal, key, job_id="1a2b3c4d5e6f7a8b", status="submitted", **kwargs):
    arguments = dict(url=URL + "/", instrument="isgri", product="isgri_lc", job_id=job_id,
                     session_id="H4YLHYBEYJ2JHHS6", status=status)
    arguments.update(kwargs)
    return journal.record(key, **arguments)


def parse_utc(text):
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset().total_seconds() == 0
    return moment


def test_journal_record_lookup_update_remove(tmp_path):
    journal = JobJournal(tmp_path)
    key = key_of()
    assert journal.lookup(key) is None and journal.update(key, "progress") is False
    before = datetime.now(timezone.utc)
    assert record(journal, key, params={"RA": 10.0, "T1": "2020", "token": mint_token(), "n": None}) is True
    entry = journal.lookup(key)
    assert {name: entry[name] for name in ("job_id", "session_id", "instrument", "product", "status",
                                           "url")} == {
        "job_id": "1a2b3c4d5e6f7a8b", "session_id": "H4YLHYBEYJ2JHHS6", "instrument": "isgri",
        "product": "isgri_lc", "status": "submitted", "url": URL}
    assert entry["params"] == {"RA": 10.0, "T1": "2020", "n": None}
    assert entry["key"] == key
    submitted = parse_utc(entry["submitted"])
    assert submitted >= before.replace(microsecond=before.microsecond // 1000 * 1000)
    assert entry["updated"] == entry["submitted"]

    assert journal.update(key, "progress") is True
    entry = journal.lookup(key)
    assert entry["status"] == "progress"
    assert parse_utc(entry["updated"]) >= submitted and entry["submitted"] == submitted.isoformat(
        timespec="milliseconds")

    # The same job recorded again keeps its submission time; a new job gets a new one.
    record(journal, key, status="progress")
    assert journal.lookup(key)["submitted"] == entry["submitted"]
    record(journal, key, job_id="ffffffffffffffff")
    assert journal.lookup(key)["job_id"] == "ffffffffffffffff"

    assert journal.remove(key) is True
    assert journal.lookup(key) is None and journal.remove(key) is False and len(journal) == 0


def test_journal_entries_and_table(tmp_path):
    journal = JobJournal(tmp_path)
    empty = journal.as_table()
    assert isinstance(empty, Table) and len(empty) == 0 and tuple(empty.colnames) == JOURNAL_COLUMNS
    keys = [key_of(params={"i": i}) for i in range(3)]
    for index, key in enumerate(keys):
        record(journal, key, job_id=f"{index:016x}", session_id=None if index == 2 else "S")
    entries = journal.entries()
    assert [entry["job_id"] for entry in entries] == [f"{index:016x}" for index in range(3)]
    table = journal.as_table()
    assert tuple(table.colnames) == JOURNAL_COLUMNS and len(table) == 3
    assert list(table["job_id"]) == [f"{index:016x}" for index in range(3)]
    assert list(table["session_id"]) == ["S", "S", ""]
    assert set(table["url"]) == {URL} and set(table["status"]) == {"submitted"}
    parse_utc(table["submitted"][0])
    assert journal.find(f"{1:016x}")["key"] == keys[1]
    assert journal.find(f"{1:016x}", "S")["key"] == keys[1]
    assert journal.find(f"{1:016x}", "OTHER") is None and journal.find("0" * 16 + "x") is None


def test_journal_corrupt_entry(tmp_path):
    journal = JobJournal(tmp_path)
    key = key_of()
    record(journal, key)
    other = key_of(user="bob")
    record(journal, other)
    (journal.directory / f"{key}.json").write_text("{not json")
    with pytest.warns(CorruptDataWarning):
        assert [entry["key"] for entry in journal.entries()] == [other]
    assert not (journal.directory / f"{key}.json").exists()
    (journal.directory / f"{other}.json").write_text(json.dumps({"format": "something else"}))
    with pytest.warns(CorruptDataWarning):
        assert journal.lookup(other) is None


def test_journal_eight_threads(tmp_path):
    journal = JobJournal(tmp_path)
    shared = key_of(params={"shared": True})
    record(journal, shared)
    errors = []

    def work(index):
        try:
            own = key_of(params={"thread": index})
            assert record(journal, own, job_id=f"{index:016x}")
            for round_ in range(25):
                assert journal.update(own, f"progress-{round_}")
                assert journal.update(shared, f"progress-{index}-{round_}")
                assert journal.lookup(shared)["job_id"] == "1a2b3c4d5e6f7a8b"
                assert len(journal.entries()) >= 1
            assert journal.lookup(own)["status"] == "progress-24"
            if index % 2:
                assert journal.remove(own)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entries = journal.entries()
    assert sorted(entry["job_id"] for entry in entries if entry["key"] != shared) == \
        [f"{index:016x}" for index in range(0, 8, 2)]
    assert journal.lookup(shared)["status"].endswith("-24")
    assert [name for name in os.listdir(journal.directory) if name.endswith(".tmp")] == []
