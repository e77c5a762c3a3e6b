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
# About two processes a core, capped: each keeps its own pool of database connections
# (adminapp/config.py), and PostgreSQL allows 100 in all by default.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1) + 1, 8))
# A request holds its thread from its first byte to its last, and gunicorn sets no limit on
# how slowly a client may send: a body trickled at a byte a second holds a thread for as many
# seconds as it has bytes. So there are many threads: a thread that waits for a client is
# nearly free, and it holds no database connection while it waits (CSRF protection reads the
# whole form in the first hook that touches anything, before the user is loaded; threads
# beyond the app's pool of connections queue for one, see adminapp/config.py). With 20
# clients trickling bodies, an ordinary page still answers in tens of milliseconds (README,
# "Production"). Against many more, a buffering proxy in front is the answer.
threads = 32
# A worker takes no more connections than it has threads. Left to itself it would take up to
# 1,000, and a page that landed on a worker whose threads were all held by slow clients would
# wait behind them while other workers sat idle; now it waits in the listening socket's queue
# for the first thread free in any worker. (gunicorn 23's gthread worker could leave the
# connection that filled it unread, a thread free, until another request ended: with every
# other thread held by a slow client, that page waited for minutes. Fixed in gunicorn 24.)
worker_connections = threads

timeout = 30  # a worker silent this long is stuck: it is killed and replaced
graceful_timeout = 120  # on restart or shutdown, running requests (an export) may finish
# No idle connection is kept open: each would count against `worker_connections`, and the
# proxy in front opens one a request anyway (nginx talks HTTP/1.0 to the app unless told).
keepalive = 0

# A worker is replaced after this many requests, so memory that Python's allocator keeps
# (fragmentation after large exports, any slow leak) is given back. The jitter adds a
# random 0 to 1,000 to each worker's count, so workers started together do not retire together.
# Rarely, not every few minutes: a retiring gthread worker resets the connections it accepted
# but had not read yet (gunicorn issue #3038), so each replacement may cost a client or two
# an error. At 1,000 the reliability script saw 2 to 4 resets in 3 minutes of load; at this
# count, none.
max_requests = 10_000
max_requests_jitter = 1_000

# Request limits: list pages with several filters have long query strings, hence a request
# line of up to 8 KiB (gunicorn's maximum); headers stay at gunicorn's defaults.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
