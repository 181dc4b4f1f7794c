"""MODPO Explorer: multi-objective DPO, a family of LoRA adapters per weighting, and its Pareto front.

Modules: loss and pareto (pure math), data, scorers, margins, config, train, generate, evaluate,
feedback, family (all file I/O), front, sweep, jobs, cli. Import what you need from each.
"""
__version__ = "0.1.0"
