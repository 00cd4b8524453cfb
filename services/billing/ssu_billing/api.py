"""HTTP API of the billing service (DESIGN §5)."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["billing"])
