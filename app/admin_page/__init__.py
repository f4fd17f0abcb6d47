"""The admin page: server-rendered HTML over the admin server, behind the admin token.

``admin_page(service, token)`` gives the routes the admin server adds (the
page's app mounted at ``PREFIX``); see app/admin_page/views.py for the pages,
session.py for who may use them, web.py for the headers every answer gets.
"""

from __future__ import annotations

from .views import PREFIX, admin_page

__all__ = ["PREFIX", "admin_page"]
