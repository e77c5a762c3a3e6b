"""Where the app may send a browser back to: its own pages only."""

from urllib.parse import urlsplit


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site (`/admin/x?y=1`), else None: never
    `//evil.example`, `https://...`, `http:evil.example` or anything that does not parse."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "/[" is fine, but an unbalanced IPv6 host is not
        return None
    if parts.scheme or parts.netloc or any(ord(char) < 32 for char in target):
        return None
    return target
