"""modpo/data.py: schema, loaders, validation messages, chat template, dropping long pairs."""
import json

import pytest

from modpo.data import (
    IGNORE_INDEX,
    load_hf,
    load_jsonl,
    load_pku_saferlhf,
    pad_pairs,
    prompt_ids,
    rows_from_records,
    tokenize_pairs,
    write_jsonl,
)
from modpo.models import load_tokenizer

ROWS = [
    {"prompt": "hi", "responses": ["hello there", "go away"], "preferences": {"help": 0, "short": 1}},
    {"prompt": "cats?", "responses": ["cats are great pets", "no"], "preferences": {"help": 0, "short": None}},
    {"prompt": "rain?", "responses": ["wet", "it rains a lot in spring"], "preferences": {"help": 1, "short": 0}},
]


def write(tmp_path, rows):
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_pairs_per_objective(tmp_path):
    ds = load_jsonl(write(tmp_path, ROWS))
    assert ds.objectives == ["help", "short"]
    assert [(p.chosen, p.rejected) for p in ds.pairs("help")] == [
        ("hello there", "go away"), ("cats are great pets", "no"), ("it rains a lot in spring", "wet")]
    # the tie on row 1 is skipped
    assert [(p.row, p.chosen) for p in ds.pairs("short")] == [(0, "go away"), (2, "wet")]
    with pytest.raises(ValueError, match="unknown objective 'x'"):
        ds.pairs("x")


def test_jsonl_round_trip(tmp_path):
    ds = load_jsonl(write(tmp_path, ROWS))
    write_jsonl(ds, tmp_path / "copy.jsonl")
    assert load_jsonl(tmp_path / "copy.jsonl").rows == ds.rows


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"responses": ["a", "b"], "preferences": {"help": 0, "short": 0}}, r"line 2, column 'prompt': is missing"),
        (
            {"prompt": 3, "responses": ["a", "b"], "preferences": {"help": 0, "short": 0}},
            r"line 2, column 'prompt': expected a string, got int",
        ),
        (
            {"prompt": "x", "responses": ["a", " "], "preferences": {"help": 0, "short": 0}},
            r"line 2, column 'responses': is empty",
        ),
        (
            {"prompt": "x", "responses": ["a"], "preferences": {"help": 0, "short": 0}},
            r"line 2, column 'responses': must be a list of exactly two",
        ),
        (
            {"prompt": "x", "responses": ["a", "b"], "preferences": {"help": 2, "short": 0}},
            r"line 2, column 'preferences.help': a preference must be 0, 1 or null",
        ),
        (
            {"prompt": "x", "responses": ["a", "b"], "preferences": {"help": 0}},
            r"line 2, column 'preferences': has objectives \['help'\], expected",
        ),
        (
            {"prompt": "x", "responses": ["same", "same"], "preferences": {"help": 0, "short": 1}},
            r"line 2, column 'responses': both responses are identical",
        ),
    ],
)
def test_malformed_row_names_row_and_column(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        load_jsonl(write(tmp_path, [ROWS[0], bad]))


def test_bad_json_line_and_missing_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        load_jsonl(path)
    with pytest.raises(FileNotFoundError, match="no preference file"):
        load_jsonl(tmp_path / "missing.jsonl")


def pku_records():
    return {"prompt": ["how to bake?", "how to pick a lock?"],
            "response_0": ["mix flour and bake", "use a pick"],
            "response_1": ["no idea", "I can't help with that"],
            "better_response_id": [0, 0], "safer_response_id": [0, 1]}


def test_pku_saferlhf_columns_from_local_dataset(tmp_path):
    import datasets
    datasets.Dataset.from_dict(pku_records()).save_to_disk(str(tmp_path / "pku"))
    ds = load_pku_saferlhf(str(tmp_path / "pku"))
    assert ds.objectives == ["helpfulness", "harmlessness"]
    assert ds.pairs("harmlessness")[1].chosen == "I can't help with that"
    assert ds.pairs("helpfulness")[1].chosen == "use a pick"


def test_hf_loader_names_missing_column(tmp_path):
    import datasets
    records = pku_records()
    del records["safer_response_id"]
    datasets.Dataset.from_dict(records).save_to_disk(str(tmp_path / "pku"))
    with pytest.raises(ValueError, match=r"row 0, column 'safer_response_id': is missing"):
        load_pku_saferlhf(str(tmp_path / "pku"))
    with pytest.raises(ValueError, match="preference_columns is required"):
        load_hf(str(tmp_path / "pku"))


def test_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match="no rows"):
        rows_from_records([], "empty.jsonl")


def test_prompt_goes_through_chat_template():
    tok = load_tokenizer("tiny")
    text = tok.decode(prompt_ids(tok, "tell me about cats"))
    assert text.startswith("<|im_start|>user\ntell me about cats<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")


def test_long_pairs_are_dropped_and_counted_not_truncated(tmp_path):
    tok = load_tokenizer("tiny")
    rows = ROWS + [{"prompt": "long?", "responses": ["word " * 200, "short"], "preferences": {"help": 0, "short": 1}}]
    pairs = load_jsonl(write(tmp_path, rows)).pairs("help")
    examples, dropped = tokenize_pairs(pairs, tok, max_length=64)
    assert dropped == 1 and len(examples) == 3
    for ex in examples:
        assert ex["chosen_ids"][-1] == tok.eos_token_id and ex["rejected_ids"][-1] == tok.eos_token_id
        assert tok.decode(ex["chosen_ids"][:-1]) == pairs[ex["row"]].chosen


def test_pad_pairs_masks_prompt_and_padding():
    ex = [{"prompt_ids": [5, 6], "chosen_ids": [7, 2], "rejected_ids": [8, 9, 2]}]
    batch = pad_pairs(ex, pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 2, 0], [5, 6, 8, 9, 2]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 7, 2, IGNORE_INDEX],
                                        [IGNORE_INDEX, IGNORE_INDEX, 8, 9, 2]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]


@pytest.mark.parametrize("text, expected", [
    ("Boil it for six minutes. Then cool it in cold wa", "Boil it for six minutes."),
    ("Yes! It is safe. Keep it cold? Sure, if you", "Yes! It is safe. Keep it cold?"),
    ('He said "stop." and then the', 'He said "stop."'),
    ("Version 2.5 is out and it", None),  # a decimal point is not a sentence end
    ("no sentence ends here", None),
])
def test_capped_responses_are_trimmed_to_their_last_sentence(text, expected):
    from modpo.generate import trim_to_sentence
    assert trim_to_sentence(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Here are some tips:\n\n1.", None),  # a list's first number is no place to stop
    ("It can be done. Here are some tips:\n\n1.", "It can be done."),
    ("Steps:\n\n1. Crack the eggs.\n2.", "Steps:\n\n1. Crack the eggs."),
    ("A simple guide: 1.", None),
    ("Sleep well. **1.", "Sleep well."),
    ("Tips:\n- 1.\n- 2.", None),
    ("Done! 3.", "Done!"),
    ("He was born in 1452.", "He was born in 1452."),  # a number that ends a sentence still ends it
    ("It weighs about 10.", "It weighs about 10."),
    ("Pi is 3.14. So", "Pi is 3.14."),
])
def test_a_list_number_ends_no_sentence(text, expected):
    """Rule 2: 9% of the first demo's trimmed answers ended on a dangling "1." after rule 1 took it for a
    sentence end, and training taught EOS there. Rule 1 is kept for the families trimmed by it."""
    from modpo.generate import trim_to_sentence
    assert trim_to_sentence(text) == expected
    if text.rstrip().endswith(("1.", "2.", "3.")) and expected != text:
        assert trim_to_sentence(text, rule=1) == text.strip()
    with pytest.raises(ValueError, match="unknown trim rule 3"):
        trim_to_sentence(text, rule=3)


def test_only_responses_that_hit_the_cap_are_trimmed():
    """trim_capped (sampling and the demo's evaluation): a response that ended with EOS is kept as is even
    when its last sentence is unfinished; a capped one is cut to its last complete sentence, or kept whole."""
    from modpo.generate import trim_capped
    eos = 2
    texts = ["Short answer. And a fragment", "Short answer. And a fragment", "no sentence end at all"]
    ids = [[5, 6, eos], [5, 6, 7], [5, 6, 7]]
    assert trim_capped(texts, ids, eos) == ["Short answer. And a fragment", "Short answer.", "no sentence end at all"]
    listed = ["Short answer. Tips:\n\n1."]
    assert trim_capped(listed, [[5, 6, 7]], eos) == ["Short answer."]
    assert trim_capped(listed, [[5, 6, 7]], eos, rule=1) == listed
