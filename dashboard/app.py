"""MODPO Explorer dashboard: `streamlit run dashboard/app.py`, or `python -m modpo dashboard`.

It binds to 127.0.0.1 from any working directory (dashboard/.streamlit/config.toml, read beside this
script); an address that is unset (all interfaces by accident) is refused here, and one given on
purpose (--server.address 0.0.0.0) is shown in the sidebar. See SECURITY.md.
The checkpoints root is $MODPO_CHECKPOINTS or ./checkpoints; ?family=NAME picks a family.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `modpo` and `dashboard` import

import streamlit as st  # noqa: E402

from dashboard import compare_page, front_page, train_page  # noqa: E402

st.set_page_config(page_title="MODPO Explorer", layout="wide")
address = st.get_option("server.address")
if not address:
    st.error("This server listens on every network interface because no address was set, so anyone who can reach "
             "this machine could use it. Start it with `python -m modpo dashboard` (127.0.0.1), or pass "
             "`--server.address 127.0.0.1`; to expose it on purpose, pass the address explicitly (SECURITY.md).")
    st.stop()
if address not in ("127.0.0.1", "localhost", "::1"):
    st.sidebar.warning(f"Served on {address}: reachable from the network, by your choice.")
def front_at_its_own_url() -> None:
    """/front: the default page is served at /, so a typed /front gets this hidden alias of it."""
    front_page.render()


pages = {"front": st.Page(front_page.render, title="Front", url_path="home", default=True),
         "compare": st.Page(compare_page.render, title="Compare", url_path="compare"),
         "train": st.Page(train_page.render, title="Train", url_path="train")}
st.session_state["_pages"] = pages  # so a page can open another (st.switch_page takes a registered page)
page = st.navigation([*pages.values(),
                      st.Page(front_at_its_own_url, title="Front", url_path="front", visibility="hidden")])
st.sidebar.caption("MODPO Explorer: one LoRA adapter per weighting of the objectives.")
page.run()
