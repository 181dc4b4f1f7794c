"""Security: safetensors only, no remote code unless asked, no shell, loopback only, paths inside the root."""
import ast
import json
import shutil
from pathlib import Path

import pytest

from modpo import family as fam

REPO = Path(__file__).resolve().parent.parent
SOURCES = [p for d in ("modpo", "dashboard", "scripts", "benchmarks") for p in (REPO / d).rglob("*.py")]


def calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_no_shell_no_pickle_no_unsafe_torch_load():
    problems = []
    for path in SOURCES:
        for node, func in calls(path):
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if keywords.get("shell") not in (None, "False"):
                problems.append(f"{where}: {func}(shell=...) hands a string to a shell")
            # the scanner names the unsafe calls it looks for; nothing here calls them
            if func in ("os.system", "os.popen", "pickle.load", "pickle.loads"):
                problems.append(f"{where}: {func}")
            if func == "torch.load" and keywords.get("weights_only") != "True":
                problems.append(f"{where}: torch.load without weights_only=True")
            if keywords.get("trust_remote_code") == "True":
                problems.append(f"{where}: trust_remote_code=True hard-coded")
            if keywords.get("use_safetensors") == "False":
                problems.append(f"{where}: use_safetensors=False")
    assert not problems, "\n".join(problems)


def test_every_from_pretrained_of_a_model_asks_for_safetensors():
    for path in SOURCES:
        for node, func in calls(path):
            if func.endswith("ForCausalLM.from_pretrained") and "gguf_file" not in {k.arg for k in node.keywords}:
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert keywords.get("use_safetensors") == "True", f"{path}:{node.lineno} may load pickled weights"


def test_a_pickled_base_model_is_refused(tmp_path):
    import torch

    from modpo.models import load_base
    model, tok = load_base("tiny")
    folder = tmp_path / "pickled"
    model.config.save_pretrained(folder)
    tok.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # the pickle format, which can run code
    assert not list(folder.glob("*.safetensors"))
    with pytest.raises(ValueError, match="safetensors weights are required"):
        load_base(str(tmp_path / "pickled"))


def test_a_pickled_adapter_is_refused(tmp_path, tiny_checkpoints):
    from modpo.models import attach_adapters, load_base
    source = next((tiny_checkpoints / "tiny" / "adapters").iterdir())
    bad = tmp_path / "adapter"
    bad.mkdir()
    (bad / "adapter_config.json").write_text((source / "adapter_config.json").read_text())
    (bad / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    model, _ = load_base("tiny")
    with pytest.raises(ValueError, match="only safetensors weights are loaded"):
        attach_adapters(model, {"bad": bad})
    root = tmp_path / "fam"
    shutil.copytree(tiny_checkpoints / "tiny", root)
    target = next((root / "adapters").iterdir())
    (target / "adapter_model.safetensors").rename(target / "adapter_model.bin")
    family = fam.load_family(root)
    assert target.name not in [p.id for p in family.points]
    assert any(target.name in e for e in family.errors)


def test_trust_remote_code_is_off_unless_the_flag_asks():
    from modpo.cli import build_parser

    sweep = ["sweep", "--family", "f", "--data", "d", "--objectives", "a:maximize:words,b:maximize:brevity",
             "--target", "a"]
    assert build_parser().parse_args(sweep).trust_remote_code is False
    assert build_parser().parse_args(sweep + ["--trust-remote-code"]).trust_remote_code is True


@pytest.mark.parametrize("typed", ["../outside", "/etc", "demo/../../x", "..", ""])
def test_family_paths_outside_the_root_are_refused(tmp_path, typed):
    with pytest.raises(fam.FamilyError):
        fam.inside_root(tmp_path / "root", typed)


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(fam.FamilyError, match="outside the checkpoints root"):
        fam.inside_root(root, "link")


def test_the_url_family_parameter_cannot_leave_the_root(tmp_path, tiny_checkpoints, monkeypatch):
    from app_helpers import front_page_at, plain
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoints, root)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "family.json").write_text(json.dumps({"schema_version": 1}))
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(root))

    at = front_page_at("../secret")
    shown = plain(" ".join(str(e.value) for e in at.error) + " ".join(str(w.value) for w in at.warning))
    assert "../secret" in shown and ("refused" in shown or "not a family name" in shown), shown
