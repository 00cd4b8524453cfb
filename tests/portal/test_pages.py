"""The portal's pages over its read model: events in (real broker), HTML out (real database)."""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from harness import eventually
from portal_world import invoice, page_until, portal, publish
from registry_world import EAST, EAST_KATO, license_event, new_bin, new_iin, new_license_number
from ssu_contracts import (
    ApplicationRejectedV1,
    ApplicationSubmittedV1,
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentStartedV1,
    InvoiceIssuedV1,
)

pytestmark = pytest.mark.timeout(120)

ADDRESSEE = {"name": "Айгерим", "language": "kk"}


def _month(offset: int) -> str:
    today = date.today().replace(day=1)
    year, month = today.year, today.month - offset
    while month < 1:
        month += 12
        year -= 1
    return f"{year}-{month:02d}"


async def _license(number: str, bin_: str, **kwargs: Any) -> None:
    await publish(
        license_event("issued", number=number, bin=bin_, seq=1, **kwargs),
        source="/ssu/licensing",
        subject=number,
    )


async def test_a_shelter_shows_its_district_never_its_address() -> None:
    home, shelter = new_license_number(), new_license_number()
    async with portal() as client:
        await _license(
            home,
            new_bin(),
            name="Мейірім үйі",
            sites=[
                {"site_id": "S1", "address": "Өскемен, Абай 10", "kato": EAST_KATO, "places": 9}
            ],
            step_free_access=True,
        )
        await _license(
            shelter,
            new_bin(),
            name="Қорған баспанасы",
            subtypes=[("temporary_stay", "domestic_violence")],
            sites=[
                {
                    "site_id": "S1",
                    "address": "Өскемен, Құпия көшесі 7",
                    "kato": EAST_KATO,
                    "places": 12,
                }
            ],
        )
        catalogue = await page_until(client, "/providers?lang=ru", "Қорған баспанасы")
        assert "Өскемен, Абай 10" in catalogue
        pages = [catalogue]
        for lang in ("kk", "ru"):
            pages.append((await client.get(f"/providers?lang={lang}&sort=name")).text)
            pages.append((await client.get(f"/licenses/{shelter}?lang={lang}")).text)
            pages.append((await client.get(f"/licenses/{shelter}/certificate?lang={lang}")).text)
            pages.append((await client.get(f"/licenses?q=Қорған&lang={lang}")).text)
        for text in pages:
            assert "Құпия" not in text
        detail = (await client.get(f"/licenses/{shelter}?lang=ru")).text
        assert "Адрес приюта не публикуется; район (КАТО) 631000000" in detail
        pdf = await client.get(f"/licenses/{shelter}/certificate.pdf?lang=kk")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["content-type"] == "application/pdf"
        # The filters narrow to what was asked: the step-free filter leaves the home only.
        step_free = (await client.get("/providers?step_free=1&lang=ru")).text
        assert "Мейірім үйі" in step_free and "Қорған баспанасы" not in step_free
        forms = (await client.get("/providers?form=temporary_stay&lang=ru")).text
        assert "Қорған баспанасы" in forms and "Мейірім үйі" not in forms


async def test_free_places_follow_enrollments_and_a_disrupted_place_stays_taken() -> None:
    number, bin_ = new_license_number(), new_bin()
    async with portal() as client:
        await _license(
            number,
            bin_,
            name="Шапағат",
            sites=[
                {"site_id": "S1", "address": "Риддер, Семей 3", "kato": EAST_KATO, "places": 10}
            ],
        )
        await page_until(client, f"/licenses/{number}", "Шапағат")
        ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(4)]
        for enrollment_id in ids:
            await publish(
                EnrollmentStartedV1(
                    enrollment_id=enrollment_id,
                    iin=new_iin(),
                    provider_bin=bin_,
                    license_number=number,
                    site_id="S1",
                    region=EAST,
                    form="stationary",
                    category="elderly",
                    start_date=date.today() - timedelta(days=40),
                    addressee=ADDRESSEE,
                ),
                source="/ssu/registry",
                subject=enrollment_id,
            )
        await publish(
            EnrollmentEndedV1(
                enrollment_id=ids[0],
                iin=new_iin(),
                provider_bin=bin_,
                region=EAST,
                form="stationary",
                category="elderly",
                end_date=date.today(),
                reason="moved",
            ),
            source="/ssu/registry",
            subject=ids[0],
        )
        await publish(
            EnrollmentDisruptedV1(
                enrollment_id=ids[1],
                iin=new_iin(),
                provider_bin=bin_,
                license_number=number,
                region=EAST,
                form="stationary",
                category="elderly",
                disrupted_on=date.today(),
                reason="suspended",
                addressee=ADDRESSEE,
            ),
            source="/ssu/registry",
            subject=ids[1],
        )

        def free_places(text: str) -> str | None:
            m = re.search(r'<td class="num">10</td><td class="num">(\d+)</td>', text)
            return m.group(1) if m else None

        async def settled() -> bool:
            text = (await client.get(f"/licenses/{number}")).text
            return free_places(text) == "7"

        # Ten places, four taken, one of them ended: seven free; the disrupted one still counts.
        await eventually(settled, timeout=30)
        catalogue = (await client.get("/providers?free=1&lang=ru&sort=free")).text
        assert "7 / 10" in catalogue


async def test_monitoring_counts_refusals_by_requirement_and_invoices_to_the_tiyn() -> None:
    async with portal() as client:
        small, large = new_bin(), new_bin()
        finding = {
            "kind": "staff_ratio",
            "core": False,
            "blocking": True,
            "met": False,
            "expected": "1",
            "actual": "0",
        }
        for app_id, bin_, places, unmet in (
            ("app-small", small, 12, ["staff.janitor", "staff.gardener"]),
            ("app-large", large, 80, ["staff.janitor"]),
        ):
            await publish(
                ApplicationSubmittedV1(
                    application_id=app_id,
                    bin=bin_,
                    provider_name="Үміт",
                    legal_form="ngo",
                    region=EAST,
                    contact={"language": "kk"},
                    subtypes=[{"form": "stationary", "category": "elderly"}],
                    sites=[{"site_id": "S1", "address": "x", "kato": EAST_KATO, "places": places}],
                    requirement_set="2025.1",
                    findings=[],
                    submitted_at=datetime.now(UTC),
                ),
                source="/ssu/licensing",
                subject=app_id,
            )
            await publish(
                ApplicationRejectedV1(
                    application_id=app_id,
                    bin=bin_,
                    provider_name="Үміт",
                    region=EAST,
                    contact={"language": "kk"},
                    reason="norms",
                    inspector="insp",
                    decided_at=datetime.now(UTC),
                    findings=[
                        {**finding, "requirement_id": r, "title_ru": f"Норма {r}"} for r in unmet
                    ],
                ),
                source="/ssu/licensing",
                subject=app_id,
            )
        for n, (period, total) in enumerate(
            [(_month(1), "1000.10"), (_month(1), "234.46"), (_month(2), "99.99")]
        ):
            await publish(
                InvoiceIssuedV1.model_validate(invoice(EAST, period, total, small, n)),
                source="/ssu/billing",
                subject=f"inv-{n}",
            )
        response = await client.post(
            "/signin", data={"api_key": "ssu-dev-admin", "csrf": "x"}, cookies={}
        )
        assert response.status_code == 403  # no sign-in form was opened: no CSRF cookie
        form = await client.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        signed = await client.post(
            "/signin", data={"api_key": "ssu-dev-admin", "csrf": csrf.group(1)}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/monitoring"

        async def complete() -> str | None:
            text = (await client.get("/monitoring?lang=ru")).text
            return text if "99.99" in text and "Норма staff.gardener" in text else None

        text = await eventually(complete, timeout=30)
        rows = re.findall(
            r"<th scope=\"row\">Норма ([\w.]+)<br>.*?<td class=\"num\">(\d+)</td>"
            r"<td class=\"num\">(\d+)</td>",
            text,
            re.S,
        )
        # The janitor norm refused both applicants, one of them a small centre (12 places).
        assert rows == [("staff.janitor", "2", "1"), ("staff.gardener", "1", "1")]
        assert "Отклонено заявлений: 2; из них малых центров (мест не более 30): 1" in text
        month1 = re.search(rf"<td>{_month(1)}</td>.*?</tr>", text, re.S)
        assert month1 is not None
        assert '<td class="num">2</td><td class="num">1\u202f234.56</td>' in month1.group(0)
        assert "Начислено всего: 1\u202f334.55 ₸" in text


async def test_sessions_are_server_side_with_safe_cookies_and_csrf_on_forms() -> None:
    async with portal(development=False) as client:
        form = await client.get("/signin")
        assert "secure" in form.headers["set-cookie"].lower()
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        wrong = await client.post("/signin", data={"api_key": "not-a-key", "csrf": csrf.group(1)})
        assert wrong.status_code == 401 and "Қол жеткізу кілті танылмады" in wrong.text
        form = await client.get("/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        ok = await client.post(
            "/signin", data={"api_key": "ssu-dev-east-kz", "csrf": token.group(1)}
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/board"
        cookie = next(
            c for c in ok.headers.get_list("set-cookie") if c.startswith("ssu_portal_session=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=lax"} <= flags
        value = cookie.split(";")[0].split("=", 1)[1]
        # The regional key is not the ministry's: monitoring refuses it.
        refused = await client.get("/monitoring", cookies={"ssu_portal_session": value})
        assert refused.status_code == 403
        # Signing out needs the session's CSRF token.
        forged = await client.post(
            "/signout", data={"csrf": "forged"}, cookies={"ssu_portal_session": value}
        )
        assert forged.status_code == 403
        page = await client.get("/", cookies={"ssu_portal_session": value})
        session_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert session_csrf is not None
        out = await client.post(
            "/signout",
            data={"csrf": session_csrf.group(1)},
            cookies={"ssu_portal_session": value},
        )
        assert out.status_code == 303
        gone = await client.get("/board", cookies={"ssu_portal_session": value})
        assert gone.status_code == 401


async def test_the_language_is_switched_on_every_page_and_kept() -> None:
    async with portal() as client:
        first = await client.get("/?lang=ru")
        assert '<html lang="ru">' in first.text
        assert 'href="/?lang=kk" hreflang="kk" lang="kk">Қазақша</a>' in first.text
        kept = await client.get("/providers", cookies={"lang": "ru"})
        assert '<html lang="ru">' in kept.text and "Каталог поставщиков" in kept.text
        default = await client.get("/providers", cookies={})
        client.cookies.clear()
        fresh = await client.get("/licenses")
        assert '<html lang="kk">' in fresh.text and "Лицензияны тексеру" in fresh.text
        assert default.status_code == 200
