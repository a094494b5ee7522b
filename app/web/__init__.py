"""The memory browser: server-rendered pages at /ui over the same service parts as the API,
to see, search, fix and forget what an agent remembers.

    /ui                                      agents: memories, sessions, last activity
    /ui/overview                             the server's numbers and plots (every namespace)
    /ui/agents/{agent_id}                    memories, newest first, paged; filters, orders
    /ui/agents/{agent_id}?q=...              recall results with the parts of their scores
    /ui/agents/{agent_id}/sessions[/{id}]    sessions; a session as a timeline
    /ui/agents/{agent_id}/overview|trash     the agent's numbers and plots; its trash
    /ui/memories/{id}?agent_id=...           a memory: everything known, edit, forget
    /ui/login, /ui/logout, /ui/static/...    login form, logout, stylesheet and scripts

The pages are an adapter like the API: they import only the service (plus config, errors,
models). The CLI hands `pages_router(service)` to the HTTP app, whose gate and scope guard
check every page like an API route: the gate takes the login cookie where the API takes
`Authorization` (app/web/session.py), each route declares its scope and agent in its opt,
and the router's own guard checks the CSRF token of every form.
"""

from __future__ import annotations

from litestar import Router
from litestar.middleware import DefineMiddleware

from app.service import Service
from app.web import actions, pages
from app.web.render import ServerTiming, handle, refuse
from app.web.session import PREFIX, authenticator, check_csrf
from app.web.static import static_file


def pages_router(service: Service) -> Router:
    """Every page under /ui, with the login cookie, the CSRF guard, errors as pages and
    Server-Timing."""
    return Router(
        path=PREFIX,
        route_handlers=[pages.agents_page, pages.agent_page, pages.sessions_page,
                        pages.session_page, pages.memory_page, pages.trash_page,
                        pages.overview_page, pages.agent_overview_page, actions.edit_memory,
                        actions.forget_memory, actions.restore_memory, actions.login_page,
                        actions.login, actions.logout, static_file],
        opt={"authenticate": authenticator(service), "refuse": refuse},
        guards=[check_csrf],
        exception_handlers={Exception: handle},
        middleware=[DefineMiddleware(ServerTiming)],
        include_in_schema=False,
    )


__all__ = ["PREFIX", "pages_router"]
