"""Configurations: training (written into each adapter's meta.json), generation, and evaluation
(written into eval.json).

Kept free of heavy imports so the CLI's --help and the dashboard's forms load fast.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .weights import check_beta

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")

# How an answer cut by the token cap is trimmed to its last complete sentence (generate.trim_to_sentence).
# A family keeps the rule its data were trimmed with: its evaluations then measure answers the same way.
TRIM_RULES = {1: "any . ! ? before a space ends a sentence (families built before 2026-12-01)",
              2: "as 1, but the number opening a list item ('\\n\\n1.', '- 2.', 'tips: 1.') ends none"}
TRIM_RULE = 2


@dataclass
class TrainConfig:
    beta: float = 0.1                      # KL strength; the paper's default
    lora_r: int = 64                       # LoRA rank; the paper uses 64
    lora_alpha: float = 1.0                # LoRA alpha; the paper uses 1 (scale alpha / r)
    lora_dropout: float = 0.0              # dropout on the LoRA input
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES  # attention projections
    learning_rate: float = 5e-4            # the paper's default
    epochs: float = 3.0                    # passes over the pairs (ignored when max_steps > 0)
    max_steps: int = -1                    # > 0: stop after this many optimizer steps
    batch_size: int = 8                    # pairs per device per step
    grad_accum: int = 1                    # steps of gradient accumulation
    warmup_ratio: float = 0.1              # linear warm-up share of the steps (float warmup_steps in transformers 5)
    max_length: int = 512                  # pairs longer than this (tokens) are dropped, not truncated
    seed: int = 0                          # seeds LoRA init, data order and dropout
    logging_steps: int = 1                 # loss is logged every this many steps
    bf16: bool = False                     # bf16 autocast (GPU)

    def __post_init__(self):
        check_beta(self.beta)
        self.target_modules = tuple(self.target_modules)
        checks = [
            (self.lora_r >= 1, f"lora_r must be >= 1, got {self.lora_r}"),
            (self.lora_alpha > 0, f"lora_alpha must be > 0, got {self.lora_alpha}"),
            (0 <= self.lora_dropout < 1, f"lora_dropout must be in [0, 1), got {self.lora_dropout}"),
            (0 < self.learning_rate < 1, f"learning_rate must be in (0, 1), got {self.learning_rate}"),
            (self.epochs > 0 or self.max_steps > 0, "give epochs > 0 or max_steps > 0"),
            (
                self.max_steps == -1 or self.max_steps >= 1,
                f"max_steps must be >= 1 (or -1 for epochs), got {self.max_steps}",
            ),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}"),
            (self.max_length >= 8, f"max_length must be >= 8 tokens, got {self.max_length}"),
            (bool(self.target_modules), "target_modules must name at least one module"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_json(self) -> dict:
        return {**asdict(self), "target_modules": list(self.target_modules)}


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 64     # response length cap
    temperature: float = 0.0     # 0 = greedy
    top_p: float = 1.0           # nucleus sampling when temperature > 0
    seed: int = 0                # sampling seed
    min_new_tokens: int = 0      # > 0: no EOS before this many tokens (benchmarks: equal lengths)
    no_repeat_ngram: int = 0     # n > 0: no token n-gram occurs twice in an answer (the prompt may be quoted)

    def __post_init__(self):
        if not 1 <= self.max_new_tokens <= 4096:
            raise ValueError(f"max_new_tokens must be in [1, 4096], got {self.max_new_tokens}")
        if not 0 <= self.temperature <= 5:
            raise ValueError(f"temperature must be in [0, 5] (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"min_new_tokens must be in [0, max_new_tokens], got {self.min_new_tokens}")
        check_no_repeat_ngram(self.no_repeat_ngram)


@dataclass(frozen=True)
class EvalSettings:
    max_new_tokens: int = 64    # response length cap
    temperature: float = 0.0    # 0 = greedy (the default: comparable, low-noise points)
    seed: int = 0               # sampling seed when temperature > 0
    batch_size: int = 32        # rows per generate call (rows mix adapters)
    samples_saved: int = 1000   # responses kept in eval.json (every one, up to 1000 prompts): the Compare page
                                # shows them at once, and the votes' pool (votes.answer_pool) draws its pairs from them
    trim_capped: bool = False   # score a response cut by the cap up to its last complete sentence (as sampled data)
    trim_rule: int = TRIM_RULE  # how, when trim_capped (TRIM_RULES); a record without it was trimmed by rule 1
    no_repeat_ngram: int = 0    # n > 0: no token n-gram twice in an answer (GenerationSettings); a record without it: 0

    # what makes two evaluations comparable (batch_size and samples_saved change no score)
    COMPARED = ("max_new_tokens", "temperature", "seed", "trim_capped", "trim_rule", "no_repeat_ngram")

    def __post_init__(self):
        check_no_repeat_ngram(self.no_repeat_ngram)

    def generation(self) -> GenerationSettings:
        return GenerationSettings(self.max_new_tokens, self.temperature, 1.0, self.seed,
                                  no_repeat_ngram=self.no_repeat_ngram)

    @classmethod
    def from_recorded(cls, recorded: dict | None, **given) -> "EvalSettings":
        """Settings recorded in a family's eval.json files (family.recorded_eval_settings), overridden by
        the given values that are not None: the one way a family's settings become EvalSettings."""
        names = {f.name for f in fields(cls)}
        base = {k: v for k, v in with_legacy_defaults(recorded).items() if k in names}
        return cls(**{**base, **{k: v for k, v in given.items() if v is not None and k in names}})

    @staticmethod
    def answer_rules_of(recorded: dict | None) -> dict:
        """{trim_capped, trim_rule, no_repeat_ngram} of a family's recorded settings: the rules its answers were
        made and scored by, for answers at another cap or temperature (the Compare page, `generate`) to follow."""
        recorded = with_legacy_defaults(recorded)
        return {"trim_capped": bool(recorded.get("trim_capped")), "trim_rule": recorded.get("trim_rule", TRIM_RULE),
                "no_repeat_ngram": recorded.get("no_repeat_ngram", 0)}

    def differs_from(self, recorded: dict | None) -> dict:
        """{field: (recorded, self)} for the fields that make scores incomparable with recorded ones."""
        if not recorded:
            return {}
        recorded = with_legacy_defaults(recorded)
        return {k: (recorded.get(k), getattr(self, k)) for k in self.COMPARED
                if k in recorded and recorded.get(k) != getattr(self, k)
                and not (k == "seed" and self.temperature == 0)
                and not (k == "trim_rule" and not self.trim_capped and not recorded.get("trim_capped"))}


def with_legacy_defaults(recorded: dict | None) -> dict:
    """Recorded evaluation settings with what a record older than a field meant by its absence: an evaluation
    that trimmed capped answers before the rule was recorded used rule 1 (and a family keeps measuring its
    points that way), and one before no_repeat_ngram banned no repeats (0)."""
    recorded = dict(recorded or {})
    if recorded.get("trim_capped") and "trim_rule" not in recorded:
        recorded["trim_rule"] = 1
    if recorded:
        recorded.setdefault("no_repeat_ngram", 0)
    return recorded


def check_no_repeat_ngram(n) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not (n == 0 or 2 <= n <= 16):
        raise ValueError(f"no_repeat_ngram must be 0 (off) or an n-gram length in [2, 16], got {n!r}")
