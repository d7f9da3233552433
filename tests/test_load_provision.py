"""Load management's per-charger maximum and priorities, provisioned wherever chargers and tags
are: the shell (`chargers add --max-kw --priority`, `tags add --priority`), import files (TOML,
CSV) and the API (PUT /api/chargers/{id}, PUT /api/id-tags/{tag}), shown where they are listed."""

from __future__ import annotations

import json
from pathlib import Path

from ocpp_console.csms import CentralSystem
from tests.test_api import api_for, get
from tests.test_provision import _cli, one_line_error, rows_of


def test_the_shell_provisions_a_maximum_and_priorities(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    db = tmp_path / "site.sqlite"
    added = cli("chargers", "add", "CP-1", "--max-kw", "11", "--priority", "2")
    assert added.code == 0 and "maximum 11, priority 2" in added.err
    assert cli("chargers", "add", "CP-2", "--max-kw", "7,4").code == 0  # a decimal comma, as typed
    assert cli("chargers", "add", "CP-3").code == 0
    assert cli("tags", "add", "VAN-1", "--priority", "5").code == 0
    assert cli("tags", "add", "VISITOR", "--priority", "-1").code == 0
    assert rows_of(db, "SELECT id, max_power_w, priority FROM chargers ORDER BY id") == [
        ("CP-1", 11_000, 2), ("CP-2", 7_400, None), ("CP-3", None, None)]
    assert rows_of(db, "SELECT id_tag, priority FROM id_tags ORDER BY id_tag") == [("VAN-1", 5), ("VISITOR", -1)]

    text = cli("chargers", "list").out.splitlines()
    column = text[0].index("MAX KW")
    cp1, cp2, cp3 = text[1:]
    assert cp1[column:].split()[:2] == ["11", "2"] and cp2[column:].split()[:2] == ["7.4", "-"]
    assert "22 (setting)" in cp3  # not provisioned: the setting charger_max_kw, said so
    tags = cli("tags", "list").out.splitlines()
    assert tags[1].split()[:6] == ["VAN-1", "Accepted", "-", "-", "0.00", "EUR"] and tags[1].split()[6] == "5"
    listed = {c["id"]: c for c in json.loads(cli("chargers", "list", "--json").out)}
    assert (listed["CP-1"]["max_kw"], listed["CP-1"]["priority"], listed["CP-3"]["max_kw"]) == (11.0, 2, None)
    assert {t["id_tag"]: t["priority"] for t in json.loads(cli("tags", "list", "--json").out)} == {
        "VAN-1": 5, "VISITOR": -1}

    # an update keeps what it does not name; "" clears
    assert cli("chargers", "add", "CP-1", "--note", "bay 1").code == 0
    assert rows_of(db, "SELECT max_power_w, priority FROM chargers WHERE id = 'CP-1'") == [(11_000, 2)]
    assert cli("chargers", "add", "CP-1", "--max-kw", "", "--priority", "").code == 0
    assert cli("tags", "add", "VAN-1", "--priority", "").code == 0
    assert rows_of(db, "SELECT max_power_w, priority FROM chargers WHERE id = 'CP-1'") == [(None, None)]
    assert rows_of(db, "SELECT priority FROM id_tags WHERE id_tag = 'VAN-1'") == [(None,)]

    # malformed values are usage errors, one line each, nothing written
    for argv, message in ((("chargers", "add", "CP-1", "--max-kw", "0"), "at least 0.1"),
                          (("chargers", "add", "CP-1", "--max-kw", "0.01"), "at least 0.1"),
                          (("chargers", "add", "CP-1", "--max-kw", "11000"), "at most 1000"),
                          (("chargers", "add", "CP-1", "--max-kw", "lots"), "not a number"),
                          (("chargers", "add", "CP-1", "--priority", "1.5"), "a whole number from -100 to 100"),
                          (("tags", "add", "VAN-1", "--priority", "101"), "a whole number from -100 to 100")):
        result = cli(*argv)
        assert result.code == 2 and message in result.err and "Traceback" not in result.err, (argv, result)
    assert rows_of(db, "SELECT max_power_w FROM chargers WHERE id = 'CP-1'") == [(None,)]


def test_import_files_carry_the_maximum_and_priorities(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    db = tmp_path / "site.sqlite"
    (tmp_path / "site.toml").write_text(
        '[[chargers]]\nid = "DEPOT-1"\nmax_kw = 11\npriority = 3\n\n'
        '[[chargers]]\nid = "DEPOT-2"\nmax_kw = 7.4\n\n'
        '[[tags]]\nid_tag = "VAN-1"\npriority = 10\n'
    )
    assert cli("import", str(tmp_path / "site.toml")).code == 0
    (tmp_path / "site.csv").write_text("kind,id,max_kw,priority\ncharger,DEPOT-3,3.7,\ntag,VISITOR,,-5\n")
    assert cli("import", str(tmp_path / "site.csv")).code == 0
    assert rows_of(db, "SELECT id, max_power_w, priority FROM chargers ORDER BY id") == [
        ("DEPOT-1", 11_000, 3), ("DEPOT-2", 7_400, None), ("DEPOT-3", 3_700, None)]
    assert rows_of(db, "SELECT id_tag, priority FROM id_tags ORDER BY id_tag") == [("VAN-1", 10), ("VISITOR", -5)]

    (tmp_path / "bad.toml").write_text('[[chargers]]\nid = "DEPOT-9"\n\n[[chargers]]\nid = "DEPOT-4"\nmax_kw = -2\n')
    error = one_line_error(cli("import", str(tmp_path / "bad.toml")))
    assert "bad.toml: [[chargers]] entry 2: maximum -2 kW: at least 0.1" in error
    (tmp_path / "bad.csv").write_text("kind,id,max_kw\ntag,VAN-2,11\n")
    assert "max_kw does not apply to a tag" in one_line_error(cli("import", str(tmp_path / "bad.csv")))
    assert rows_of(db, "SELECT count(*) FROM chargers WHERE id IN ('DEPOT-9', 'DEPOT-4')") == [(0,)]


async def test_the_api_provisions_and_answers_them(csms: CentralSystem) -> None:
    async with api_for(csms) as (_, http):
        async with http.put("/api/chargers/CP-API", json={"max_kw": 7.4, "priority": 2}) as response:
            assert response.status == 200
            answer = await response.json()
        assert (answer["max_kw"], answer["priority"], answer["stored"]["max_power_w"]) == (7.4, 2, 7_400)
        async with http.put("/api/chargers/CP-API", json={"note": "bay 2"}) as response:  # absent: kept
            assert (await response.json())["max_kw"] == 7.4
        async with http.put("/api/chargers/CP-API", json={"max_kw": None}) as response:  # null: cleared
            answer = await response.json()
        assert (answer["max_kw"], answer["priority"]) == (None, 2)
        status, listed = await get(http, "/api/chargers")
        assert status == 200 and [(c["id"], c["max_kw"], c["priority"]) for c in listed] == [("CP-API", None, 2)]

        async with http.put("/api/id-tags/VAN-9", json={"priority": 7}) as response:
            assert response.status == 200 and (await response.json())["priority"] == 7
        async with http.put("/api/id-tags/VAN-9", json={"priority": None}) as response:
            assert (await response.json())["priority"] is None
        status, tags = await get(http, "/api/id-tags")
        assert [(t["id_tag"], t["priority"]) for t in tags] == [("VAN-9", None)]

        for path, body, says in (("/api/chargers/CP-API", {"max_kw": 0}, "max_kw"),
                                 ("/api/chargers/CP-API", {"max_kw": "11"}, "max_kw"),
                                 ("/api/chargers/CP-API", {"priority": 500}, "priority"),
                                 ("/api/id-tags/VAN-9", {"priority": 1.5}, "priority")):
            async with http.put(path, json=body) as response:
                assert response.status == 400, body
                assert says in (await response.json())["message"], body
