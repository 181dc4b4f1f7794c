"""MODPO Explorer dashboard: `streamlit run dashboard/app.py` (binds 127.0.0.1 by .streamlit/config.toml).

The checkpoints root is $MODPO_CHECKPOINTS or ./checkpoints; ?family=NAME picks a family.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `modpo` and `dashboard` import

import streamlit as st  # noqa: E402

from dashboard import compare_page, front_page, train_page  # noqa: E402

st.set_page_config(page_title="MODPO Explorer", layout="wide")
page = st.navigation([
    st.Page(front_page.render, title="Front", url_path="front", default=True),
    st.Page(compare_page.render, title="Compare", url_path="compare"),
    st.Page(train_page.render, title="Train", url_path="train"),
])
st.sidebar.caption("MODPO Explorer: one LoRA adapter per weighting of the objectives.")
page.run()
