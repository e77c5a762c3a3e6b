"""Where the app may send a browser back to: its own pages only."""


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this site (`/admin/x?y=1`), else None: never
    `//evil.example`, `https://...`, `http:evil.example` or `/\\evil.example`. Browsers drop
    tabs and newlines from addresses (`/\\t/evil.example` is `//evil.example`), so a path
    with control characters is refused too."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    return target
