"""Helpers of the AppTest page tests: the Front page opened with a ?family= value, and the text a
reader sees of markdown escaped by dashboard.common.literal."""
from __future__ import annotations

import re


def plain(markdown: str) -> str:
    """What a reader sees of text escaped by common.literal (backslashes and zero-width spaces gone)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")


def front_page_at(family_param: str):
    """The Front page run once with ?family=family_param (the checkpoints root comes from the environment)."""
    from streamlit.testing.v1 import AppTest

    def script():
        from dashboard import front_page
        front_page.render()
    at = AppTest.from_function(script, default_timeout=120)
    at.query_params["family"] = family_param
    at.run()
    assert not at.exception, at.exception
    return at
