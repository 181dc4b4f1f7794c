"""Any weighting: the conditioned adapter (modpo/conditioned.py) answers at a weighting the user picks.

A slider (two objectives) or one slider per objective, scaled to sum to 1 (three or more), picks w; a
toggle shows a column at that w on the Compare page, and "Pin" keeps it as a column while w moves on.
Each weighting is exported exactly as a plain LoRA (conditioned.export_lora, milliseconds) into a
folder under the system's temp directory keyed by the adapter's file and w, so it answers in the same
batched generate call as every other column, at the cost of one adapter.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from dashboard import common
from modpo import family as fam


def private_cache() -> Path:
    """This user's folder for exported weightings, made private (0700) and refused when someone else owns
    it: another local user must not be able to plant adapter files where this app looks for them."""
    import os
    folder = Path(tempfile.gettempdir()) / f"modpo-any-weighting-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise fam.FamilyError(f"{folder} is not a private folder of this user; remove it and try again")
    return folder


def export_folder(root: Path, cid: str, weights: list[float]) -> Path:
    """The exported LoRA of cid at weights (family order), written once per file version and weighting."""
    from modpo.conditioned import export_weighting

    weights_file = fam.conditioned_dir(root, cid) / "conditioned.safetensors"
    stat = weights_file.stat()
    key = hashlib.sha256(f"{weights_file.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{weights}".encode()).hexdigest()
    folder = private_cache() / key[:24]
    if not (folder / "adapter_model.safetensors").exists():
        tensors, meta = fam.read_conditioned(root, cid)
        try:
            export_weighting(fam.read_family(root), tensors, meta, weights, folder)
        except FileExistsError:  # another session wrote the same export first: it is the same file
            pass
    return folder


ANY = "-any-"


def any_id(cid: str, weights: list[float]) -> str:
    """'conditioned-any-0.50-0.50': a column's id (a valid point id and peft name; never saved as a folder)."""
    return cid + ANY + "-".join(f"{w:.2f}" for w in weights)


def point_at(root: Path, cid: str, weights: list[float]) -> fam.Point:
    """A column for the conditioned adapter at weights (not saved in the family)."""
    names = fam.read_family(root).objective_names
    pid = any_id(cid, weights)
    return fam.Point(pid, "conditioned", dict(zip(names, weights)), {"kind": "conditioned", "conditioned": cid},
                     None, export_folder(root, cid, weights))


def pick_weighting(spec, eps: float) -> list[float] | None:
    """The weighting chosen with sliders (family order, summing to 1), or None with a message."""
    from modpo.weights import normalize
    names = spec.objective_names
    if len(names) == 2:
        first = st.slider(f"weight on {common.literal(names[0])} (the rest on {common.literal(names[1])})",
                          0.0, 1.0, 0.5, 0.05, key="any_w_0")
        weights = normalize([first, 1 - first])
    else:
        cols = st.columns(len(names))
        raw = [c.slider(common.literal(n), 0.0, 1.0, 1 / len(names), 0.05, key=f"any_w_{i}")
               for i, (c, n) in enumerate(zip(cols, names))]
        try:
            weights = normalize(raw)
        except ValueError as e:
            st.info(common.literal(e))
            return None
        st.caption(common.literal("scaled to sum to 1: " + ", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights))))
    if weights[spec.target_index] < eps - 1e-9:
        st.info(common.literal(f"The conditioned adapter was trained with at least {eps:g} on the target "
                               f"({spec.target}); give it at least that much."))
        return None
    return weights


def render(root: Path, family) -> list:
    """The Any-weighting controls; returns the extra columns (the live weighting when shown, and the pins)."""
    ids = fam.list_conditioned(root)
    if not ids:
        return []
    pins = st.session_state.setdefault("any_pins", {}).setdefault(root.name, [])
    with st.expander("Any weighting: one conditioned adapter answers at the weighting you pick", expanded=False):
        cid = st.selectbox("Conditioned adapter", ids, key="any_cid") if len(ids) > 1 else ids[0]
        try:
            _, meta = fam.read_conditioned(root, cid)
        except fam.FamilyError as e:
            st.error(common.literal(f"The conditioned adapter cannot be used: {e}"))
            return []
        weights = pick_weighting(family.spec, meta["conditioning"]["eps"])
        c1, c2 = st.columns(2)
        live = c1.toggle("Show a column at this weighting", key="any_show", value=True)
        if weights and c2.button("Pin this weighting", key="any_pin") and weights not in [p[1] for p in pins]:
            pins.append((cid, weights))
        if pins and st.button("Unpin all", key="any_unpin"):
            pins.clear()
    wanted = ([(cid, weights)] if live and weights else []) + [p for p in pins if p != (cid, weights) or not live]
    try:
        return [point_at(root, c, w) for c, w in wanted if c in ids]
    except (fam.FamilyError, OSError) as e:
        st.error(common.literal(f"Cannot export that weighting: {e}"))
        return []
