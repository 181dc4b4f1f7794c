"""MODPO Explorer: multi-objective DPO, a family of LoRA adapters per weighting, and its Pareto front."""
from .loss import dpo_loss, modpo_loss, sequence_logps  # noqa: F401
from .pareto import hypervolume, pareto_mask  # noqa: F401

__version__ = "0.1.0"
