"""The admin page: server-rendered HTML over the admin server, behind the admin token.

``admin_page(service, token)`` is the ASGI app the admin server mounts at
``PREFIX``; see app/admin_page/views.py for the routes and session.py for
who may use them.
"""

from __future__ import annotations

from .views import PREFIX, admin_page

__all__ = ["PREFIX", "admin_page"]
