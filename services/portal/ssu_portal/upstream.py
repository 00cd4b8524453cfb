"""The services the portal acts through, called with the signed-in operator's own key.

What registry and licensing answer is passed on as typed records; a refusal becomes an
`UpstreamFailed` carrying the service's own explanation (problem details `detail`).
"""

from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, JsonValue, TypeAdapter

from ssu_portal.domain import UpstreamFailed


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


AnswerT = TypeVar("AnswerT", bound=_Answer)


class Alternative(_Answer):
    bin: str
    name: str
    site_id: str
    address: str
    free_places: int
    license_number: str | None = None
    phone: str | None = None


class Disruption(_Answer):
    enrollment_id: str
    full_name: str
    region: str
    form: str
    category: str
    provider_bin: str
    provider_name: str
    license_number: str
    disrupted_on: date
    days_disrupted: int
    reason: str | None = None
    alternatives: list[Alternative] = []


class HeldOffer(_Answer):
    offer_id: str
    provider_name: str
    license_number: str
    site_id: str
    expires_on: date


class WaitingEntry(_Answer):
    """One recipient in a waiting line of the region (registry's `GET /v1/waiting`)."""

    id: str
    full_name: str
    form: str
    category: str
    position: int | None
    waiting: int | None
    disrupted: bool
    asked_on: date
    days_waiting: int
    offer: HeldOffer | None = None


class Enrollment(_Answer):
    id: str
    iin: str
    license_number: str
    site_id: str
    region: str
    form: str
    category: str
    status: str
    alternatives: list[Alternative] | None = None


class RequirementSetInfo(_Answer):
    version: str
    title: str | None = None
    in_force: bool = False
    status: str | None = None


class _Page(_Answer):
    """A page of a registry list: its items are validated by the list's own model."""

    items: list[JsonValue]
    next_cursor: str | None = None


class ImpactJudged(_Answer):
    """One licensee or application of licensing's impact simulation."""

    kind: str
    key: str
    provider_name: str
    region: str
    places: int
    recipients: int
    passes_in_force: bool
    passes_simulated: bool
    unmet_blocking_simulated: list[str]


class ImpactChange(_Answer):
    providers: int
    places: int
    recipients: int
    newly_passing: list[str]
    newly_failing: list[str]


class ImpactAnswer(_Answer):
    """Licensing's `POST /v1/requirement-sets/{version}/impact`, the parts the portal shows."""

    version: str
    in_force: str
    licensees: list[ImpactJudged]
    applications: list[ImpactJudged]
    totals: dict[str, dict[str, int]]
    change: ImpactChange


_REQUIREMENT_SETS = TypeAdapter(list[RequirementSetInfo])


@dataclass
class Upstream:
    licensing_url: str
    registry_url: str
    timeout: float
    client: httpx.AsyncClient | None = None

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def _call(
        self, method: str, url: str, *, key: str, json: dict[str, str] | None = None
    ) -> JsonValue:
        if self.client is None:
            # Made on first use, inside the server's event loop; one pool for every request.
            self.client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self.client.request(
                method, url, json=json, headers={"Authorization": f"Bearer {key}"}
            )
        except httpx.HTTPError as exc:
            raise UpstreamFailed("upstream_unreachable", type(exc).__name__) from exc
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text[:300]
            raise UpstreamFailed(
                f"upstream_{response.status_code}"
                if response.status_code in _KNOWN
                else "upstream",
                detail,
                upstream_status=response.status_code,
            )
        answer: JsonValue = response.json()
        return answer

    async def _every_page(
        self, path: str, model: type[AnswerT], *, key: str, region: str | None
    ) -> list[AnswerT]:
        """Every item of a registry list the key may see, page after page."""
        found: list[AnswerT] = []
        cursor: str | None = None
        while True:
            params = httpx.QueryParams(
                {k: v for k, v in (("region", region), ("cursor", cursor)) if v} | {"limit": "200"}
            )
            page = _Page.model_validate(
                await self._call("GET", f"{self.registry_url}{path}?{params}", key=key)
            )
            found += [model.model_validate(item) for item in page.items]
            cursor = page.next_cursor
            if not cursor:
                return found

    async def disruptions(self, *, key: str, region: str | None) -> list[Disruption]:
        """Every disrupted recipient the key may see."""
        return await self._every_page("/v1/disruptions", Disruption, key=key, region=region)

    async def waiting(self, *, key: str, region: str | None) -> list[WaitingEntry]:
        """The region's waiting lines in their order."""
        return await self._every_page("/v1/waiting", WaitingEntry, key=key, region=region)

    async def answer_offer(self, *, key: str, offer_id: str, answer: str) -> None:
        """Accept (enrolling the recipient) or decline an offer, as the family answered."""
        await self._call("POST", f"{self.registry_url}/v1/offers/{offer_id}/{answer}", key=key)

    async def enrollment(self, *, key: str, enrollment_id: str) -> Enrollment:
        return Enrollment.model_validate(
            await self._call("GET", f"{self.registry_url}/v1/enrollments/{enrollment_id}", key=key)
        )

    async def enroll(self, *, key: str, body: dict[str, str]) -> Enrollment:
        return Enrollment.model_validate(
            await self._call("POST", f"{self.registry_url}/v1/enrollments", key=key, json=body)
        )

    async def requirement_sets(self, *, key: str) -> list[RequirementSetInfo]:
        answer = await self._call("GET", f"{self.licensing_url}/v1/requirement-sets", key=key)
        items = answer["items"] if isinstance(answer, dict) else answer
        return _REQUIREMENT_SETS.validate_python(items)

    async def impact(self, *, key: str, version: str, region: str | None) -> ImpactAnswer:
        query = f"?region={region}" if region else ""
        return ImpactAnswer.model_validate(
            await self._call(
                "POST",
                f"{self.licensing_url}/v1/requirement-sets/{version}/impact{query}",
                key=key,
            )
        )


# Statuses with a message of their own; any other refusal reads as a general one.
_KNOWN = frozenset({401, 403, 404, 409, 422})
