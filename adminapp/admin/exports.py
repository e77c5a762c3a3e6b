"""CSV downloads streamed from the database: memory stays flat however many rows there are,
the first bytes leave at once, and nothing is counted first."""

import csv
import io
from datetime import datetime
from decimal import Decimal

from flask import Response, stream_with_context
from werkzeug.utils import secure_filename

from ..extensions import db
from ..formatting import csv_safe

BATCH = 1000  # rows fetched from the server-side cursor, and sent, at a time


def stream_csv(filename: str, header: list[str], statement, to_values) -> Response:
    """A CSV response written while the rows of ``statement`` are read, each written as
    ``to_values(row)``."""

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield _drain(buffer)  # the first bytes, before the query has even run
        # This runs after the view returned: in the session of the request context that
        # stream_with_context restores (the view's own session is closed by then).
        rows = db.session.execute(statement.execution_options(yield_per=BATCH))
        for n, row in enumerate(rows, 1):
            writer.writerow(to_values(row))
            if n % BATCH == 0:
                yield _drain(buffer)
        yield _drain(buffer)

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={secure_filename(filename)}"},
    )


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_value(value):
    """A stored value as exports write it: unformatted, English, and never a formula."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat()
    return csv_safe(value)
