"""provenance.json: one typed record, written by every run and read by the cards; what is read is checked."""

import json

import pytest

from gpt2_scratch.provenance import Provenance


def test_round_trip_keeps_what_is_set_and_nothing_else(tmp_path):
    record = Provenance(kind="classifier", base_model="user/base", datasets=["grievances.csv"],
                        eval_dataset={"type": "grievances", "name": "grievances.csv"})
    record.write(tmp_path)
    assert json.loads((tmp_path / "provenance.json").read_text()) == {
        "kind": "classifier", "base_model": "user/base", "datasets": ["grievances.csv"],
        "eval_dataset": {"type": "grievances", "name": "grievances.csv"}}
    assert Provenance.read(tmp_path) == record
    assert Provenance.read(tmp_path / "elsewhere") == Provenance()  # none written: nothing known
    assert [p.name for p in tmp_path.iterdir()] == ["provenance.json"]  # no temporary file left


@pytest.mark.parametrize("content, message", [
    ('{"kind": "finetuned"}', "kind 'finetuned' is not one of converted, pretrained"),
    ('{"kind": "converted", "sorce": "x"}', "unknown field(s) sorce"),
    ('{"base_origin": "somewhere"}', "base_origin 'somewhere' is not one of"),
    ('{"eval_dataset": {"name": "x"}}', "eval_dataset must have exactly 'type' and 'name'"),
    ('["converted"]', "must hold one JSON object, not a list"),
    ('{"kind": ', "is not valid JSON"),
])
def test_a_bad_record_is_refused_with_its_path_and_what_is_wrong(tmp_path, content, message):
    (tmp_path / "provenance.json").write_text(content)
    with pytest.raises(ValueError, match=str(tmp_path / "provenance.json")) as error:
        Provenance.read(tmp_path)
    assert message in str(error.value) and "\n" not in str(error.value)
