"""modpo/family.py: the on-disk format, atomic writes, validation messages, jobs, path safety."""
import json
import os

import pytest

from modpo import family as fam


def make_family(root, spec):
    fam.write_family(root, spec)
    fam.write_meta(root / "base", {"id": "base", "kind": "base", "base_model": spec.base_model})
    return root


def fake_adapter(root, adapter_id, base="tiny", weights=None):
    import torch
    from safetensors.torch import save_file
    d = fam.adapter_dir(root, adapter_id)
    d.mkdir(parents=True)
    save_file({"x": torch.zeros(4)}, str(d / "adapter_model.safetensors"))
    (d / "adapter_config.json").write_text('{"r": 4}')
    fam.write_meta(d, {"id": adapter_id, "kind": "modpo", "base_model": base,
                       "weights": weights or {"positivity": 0.5, "brevity": 0.5}})
    return d


def test_family_round_trip_and_schema_version(tmp_path, spec_explicit):
    make_family(tmp_path, spec_explicit)
    fake_adapter(tmp_path, "w-0.50-0.50")
    fam.write_family(tmp_path, spec_explicit)
    on_disk = json.loads((tmp_path / "family.json").read_text())
    assert on_disk["schema_version"] == fam.SCHEMA_VERSION and on_disk["adapters"] == ["w-0.50-0.50"]
    family = fam.load_family(tmp_path)
    assert family.spec == spec_explicit and not family.errors
    assert [p.id for p in family.points] == ["base", "w-0.50-0.50"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("target"), "required field 'target' is missing"),
    (lambda d: d.update(schema_version=99), "schema_version 99 is newer"),
    (lambda d: d.update(beta="x"), "field 'beta' should be"),
    (lambda d: d.update(target="nope"), "target 'nope' is not one of"),
])
def test_bad_family_json_names_file_and_field(tmp_path, spec_explicit, edit, message):
    make_family(tmp_path, spec_explicit)
    data = json.loads((tmp_path / "family.json").read_text())
    edit(data)
    (tmp_path / "family.json").write_text(json.dumps(data))
    with pytest.raises(fam.FamilyError, match=message) as e:
        fam.load_family(tmp_path)
    assert "family.json" in str(e.value)


def test_broken_adapters_are_reported_and_the_rest_load(tmp_path, spec_explicit):
    make_family(tmp_path, spec_explicit)
    fake_adapter(tmp_path, "good")
    truncated = fake_adapter(tmp_path, "truncated") / "adapter_model.safetensors"
    truncated.write_bytes(truncated.read_bytes()[:-3])
    fake_adapter(tmp_path, "otherbase", base="gpt2")
    (fake_adapter(tmp_path, "badjson") / "meta.json").write_text("{\"id\": ")
    family = fam.load_family(tmp_path)
    assert [p.id for p in family.points] == ["base", "good"]
    text = "\n".join(family.errors)
    assert "truncated" in text and "corrupt or truncated safetensors" in text
    assert "trained on base model 'gpt2'" in text
    assert "badjson" in text and "not valid JSON" in text


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    fam.atomic_write_json(path, {"a": 1})

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        fam.atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text())["a"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"], "no temp file may be left behind"


def test_jobs_publish_only_complete_adapters(tmp_path):
    fam.write_status(tmp_path, "j1", state="running", step=3)
    assert fam.read_status(tmp_path, "j1")["step"] == 3
    partial = fam.job_dir(tmp_path, "j1") / "adapter"
    partial.mkdir()
    (partial / "adapter_config.json").write_text("{}")
    fam.remove_partial(tmp_path, "j1")
    assert not partial.exists() and not (tmp_path / "adapters").exists()
    partial.mkdir()
    (partial / "adapter_config.json").write_text("{}")
    fam.publish_adapter(tmp_path, "j1", "w-0.30-0.70")
    assert (tmp_path / "adapters" / "w-0.30-0.70" / "adapter_config.json").exists() and not partial.exists()
    with pytest.raises(ValueError, match="state.*is not one of"):
        fam.write_status(tmp_path, "j1", state="exploded")


@pytest.mark.parametrize("bad", ["../etc", "/etc", "a/../../b", ""])
def test_paths_stay_inside_root(tmp_path, bad):
    with pytest.raises(fam.FamilyError):
        fam.inside_root(tmp_path, bad)


def test_symlink_out_of_root_is_refused(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(fam.FamilyError, match="outside the checkpoints root"):
        fam.inside_root(tmp_path / "root", "link")
    assert fam.inside_root(tmp_path / "root", "demo") == (tmp_path / "root" / "demo").resolve()


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 200])
def test_bad_ids(bad):
    with pytest.raises(ValueError, match="invalid id"):
        fam.check_id(bad)
