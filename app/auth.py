"""A simple password gate for a dashboard shared on a network: SURGLENS_PASSWORD, checked before any page.

One shared password for everyone, kept per browser session; no user accounts and no encryption of
the traffic itself (put the server behind HTTPS when it leaves a trusted network). Without
SURGLENS_PASSWORD the gate is open, as on a desktop bound to 127.0.0.1.
"""
from __future__ import annotations

import hmac
import os

import streamlit as st

PASSWORD_ENV = "SURGLENS_PASSWORD"
_SESSION_KEY = "authenticated"


def password_required() -> bool:
    return bool(os.environ.get(PASSWORD_ENV))


def password_gate() -> bool:
    """True when the session may see the pages; otherwise draws the password form and returns False."""
    expected = os.environ.get(PASSWORD_ENV)
    if not expected or st.session_state.get(_SESSION_KEY):
        return True
    st.title("SurgLens")
    with st.form("login"):
        given = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if hmac.compare_digest(given.encode(), expected.encode()):
            st.session_state[_SESSION_KEY] = True
            st.session_state.pop("login_password", None)
            st.rerun()
        st.error("Wrong password.")
    st.caption("This SurgLens server asks for the password its administrator set (SURGLENS_PASSWORD).")
    return False
