#!/usr/bin/env python
"""adminapp's command line: `python manage.py --help`."""

from flask.cli import FlaskGroup

from adminapp import create_app
from adminapp.config import ConfigError


def configured_app():
    """The app, or a one-line message (not a traceback) when the environment cannot run it."""
    try:
        return create_app()
    except ConfigError as exc:
        raise SystemExit(f"manage.py: {exc}") from None


def main():
    FlaskGroup(create_app=configured_app, add_default_commands=False, add_version_option=False)(prog_name="manage.py")


if __name__ == "__main__":
    main()
