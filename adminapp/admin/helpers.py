"""Small helpers the admin views share for what a request sends: ids, text, a sign-in redirect."""

from flask import redirect, request, url_for


def login_redirect():
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def without_nul(value):
    return value.replace("\x00", "") if isinstance(value, str) else value


def parse_id(value) -> int | None:
    """An integer key from a URL or form, or None when it is not one a database could hold."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None
