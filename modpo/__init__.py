"""MODPO Explorer: multi-objective DPO, a family of LoRA adapters per weighting, and its Pareto front.

Modules, in layer order (each imports only from the ones above it; ARCHITECTURE.md has the map):
  pure math     weights.py (weightings: validation, ids, the loss's order), loss.py (sequence
                log-probs, DPO and MODPO losses), pareto.py (front, hypervolume), choose.py (the
                weighting a user's votes point to: a Bradley-Terry posterior over the simplex)
  formats       schema.py (JSON schemas of the family format), config.py (TrainConfig,
                GenerationSettings, EvalSettings), family.py (all file I/O of families, adapters,
                evaluations, votes and jobs)
  views         front.py (a family as a table with its front), plots.py (plotly figures)
  data          data.py (preference rows, tokenized pairs), scorers.py (objective scorers), votes.py
                (votes on answers as preference rows; the weighting estimate and next pair)
  models        models.py (loading models and adapters, safetensors only), routing.py (each batch
                row through its own adapter, all adapters in two matrix products a layer),
                generate.py (decoding: batched adapters, decoding-time mixing, trimming)
  pipelines     margins.py (the one-pass reference/margin precompute), train.py (a LoRA adapter on the
                transformers Trainer), conditioned.py (one weight-conditioned adapter for every
                weighting: Panacea SVD-LoRA, exact export), evaluate.py (answering and evaluation: one
                pipeline for every point kind), coherence.py (answers to unseen prompts judged), feedback.py (on-policy
                pairs labelled by scorers), instant.py (merged and mixed points), sweep.py (a whole
                family), demo.py (the shipped demo family)
  processes     jobs.py (background training runs), cli.py (the command line; __main__.py runs it)
"""
__version__ = "0.1.0"
