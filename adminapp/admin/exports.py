"""CSV downloads streamed from the database: memory stays flat however many rows there are,
the first bytes leave at once, and nothing is counted first."""

import csv
import io
from datetime import datetime
from decimal import Decimal

from flask import Response, stream_with_context
from werkzeug.utils import secure_filename

from ..formatting import csv_safe

BATCH = 1000  # rows fetched from the server-side cursor, and sent, at a time


def stream_csv(filename: str, header: list[str], fetch_rows) -> Response:
    """A CSV response written while the rows are read. ``fetch_rows()`` returns an iterable of
    value lists; it runs after the view has returned, inside the request's context."""

    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield _drain(buffer)  # the first bytes, before the query has even run
        for n, values in enumerate(fetch_rows(), 1):
            writer.writerow(values)
            if n % BATCH == 0:
                yield _drain(buffer)
        yield _drain(buffer)

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={secure_filename(filename)}"})


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
