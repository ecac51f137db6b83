"""Prometheus metrics of this process (served at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "voxbox_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "voxbox_http_request_seconds", "HTTP request handling time", ["method", "route"]
)
WEBSOCKETS_OPEN = Gauge("voxbox_websockets_open", "Open event WebSockets")
EVENTS_PUBLISHED = Counter(
    "voxbox_events_published_total", "Events published to users (one per recipient)", ["type"]
)
MESSAGE_SEND_SECONDS = Histogram(
    "voxbox_message_send_seconds",
    "Time to accept a message: validation, durable write and publish",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
MEDIA_PROCESS_SECONDS = Histogram(
    "voxbox_media_process_seconds",
    "Audio pipeline time per file, by path: remux (Opus in), streamed (Opus analysed while "
    "recording), transcode",
    ["path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0),
)
WRITE_BATCH_SIZE = Histogram(
    "voxbox_write_batch_size",
    "Writes carried by one transaction of the batched write path",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
WRITE_BATCH_SECONDS = Histogram(
    "voxbox_write_batch_seconds",
    "Time one batch of the write path takes to commit",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
WRITE_COMMIT_SECONDS = Histogram(
    "voxbox_write_commit_seconds",
    "The COMMIT of one transaction of the write path (PostgreSQL)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
USER_LOCK_HELD_SECONDS = Histogram(
    "voxbox_user_lock_held_seconds",
    "How long a transaction of the write path held users' rows (their seqs) locked, from the "
    "end of the statement that locked them to the end of its commit (PostgreSQL)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
PASSWORD_HASHES = Counter(
    "voxbox_password_hashes_total",
    "argon2 computations (a registration's hash, a login's check), by kind",
    ["kind"],
)
