#!/usr/bin/env python
"""adminapp's command line: `python manage.py --help`."""

from flask.cli import FlaskGroup

from adminapp import create_app


def main():
    FlaskGroup(create_app=create_app, add_default_commands=False, add_version_option=False)(prog_name="manage.py")


if __name__ == "__main__":
    main()
