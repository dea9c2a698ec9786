"""The office console (pages) and REST API (``/api/v1``), served by ``central serve``.

See docs/console.md: how a page or an API route is added, roles, CSRF, live updates.
"""
