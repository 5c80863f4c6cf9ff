"""The dashboard (the ``dashboard`` extra): ``create_app(client)`` in ``bananas.dashboard.app``
makes a starlette app; ``bananas dashboard`` serves it with uvicorn.

So far it serves read-only JSON endpoints (``/health``, ``/ready``, ``/metrics``,
``/api/queues``, ``/api/jobs/{id}``); the web UI and the authenticated actions (retry,
cancel, purge) are a later issue. Importing this package imports neither starlette nor
uvicorn.
"""

from __future__ import annotations

#: The error message when the ``dashboard`` extra is missing.
MISSING_EXTRA = 'the dashboard needs starlette and uvicorn: pip install "bananas[dashboard]"'
