"""Who may call a route: the ``dependencies=`` of the applications' mutations.

Reads stay public; every mutation needs a bearer token (``AUTHENTICATED``), and managing
App B's catalog and stock the ``admin`` role (``ADMIN``). Both show the ``BearerAuth``
scheme on the route in the OpenAPI document.
"""

from __future__ import annotations

from fastapi import Depends
from fastapi.params import Depends as DependsParam

from ...security import bearer_user, require_roles

ROLE_ADMIN = "admin"
AUTHENTICATED: list[DependsParam] = [Depends(bearer_user)]
ADMIN: list[DependsParam] = [Depends(require_roles(ROLE_ADMIN))]
