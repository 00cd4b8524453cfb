"""Unknown query parameters are refused on the API.

A misspelt filter (`?regoin=63`) used to be ignored, so the list answered everything and the
client believed it had filtered. Each API route's declared query names (its own and those of its
dependencies) are gathered once when the app is built; a request naming any other is a 422 that
names the parameter. Pages for people (the portal) are left alone: a stray parameter in a link
someone followed must not turn a page into an error.
"""

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from ssu_common.problems import Problem

API_PREFIX = "/v1/"


def _declared(dependant: Dependant) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _declared(sub)
    return frozenset(names)


def remember_declared_names(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Called once the routers are included: each API route's query names, by route (the
    route objects of the routers, which FastAPI puts in the request's scope)."""
    app.state.query_names = {
        id(route): _declared(route.dependant)
        for route in routes
        if isinstance(route, APIRoute) and route.path.startswith(API_PREFIX)
    }


async def refuse_unknown_query(request: Request) -> None:
    """FastAPI dependency of every included router."""
    if not request.query_params:
        return
    names: dict[int, frozenset[str]] = getattr(request.app.state, "query_names", {})
    known = names.get(id(request.scope.get("route")))
    if known is None:
        return
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise Problem(
            422,
            "; ".join(f"query.{name}: unknown query parameter" for name in unknown),
            errors=[
                {
                    "field": f"query.{name}",
                    "message": f"unknown query parameter; known: {', '.join(sorted(known))}",
                    "type": "unknown_parameter",
                }
                for name in unknown
            ],
        )
