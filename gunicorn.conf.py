"""Production server settings: `gunicorn -c gunicorn.conf.py "adminapp:create_app()"`.

Server options only. The app's settings come from the environment (adminapp/config.py),
and gunicorn reads this file whenever it is started from this folder, so it must not
daemonize or write a pid file either. Options given on the command line win.
"""

import os

# Behind a proxy on the same host by default; a platform that assigns PORT routes to it
# from outside, so then listen on every interface (gunicorn's own convention).
bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"

# Threaded workers: the sync worker is killed once it has been silent for `timeout`, even
# while it streams a response, so a long CSV export would arrive cut off. A gthread worker
# keeps signalling from its main thread while other threads serve requests.
worker_class = "gthread"
threads = 4
# About two processes a core, capped: every thread may hold a database connection, and
# PostgreSQL allows 100 by default.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1) + 1, 8))

timeout = 30  # a worker silent this long is stuck: it is killed and replaced
graceful_timeout = 120  # on restart or shutdown, running requests (an export) may finish
keepalive = 5  # seconds an idle connection from the proxy is kept open

# Request limits: list pages with several filters have long query strings, hence a request
# line of up to 8 KiB (gunicorn's maximum); headers stay at gunicorn's defaults.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
