"""Pure rules: formats, who is told, back-off, signatures, callback URLs."""

import base64
import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from ssu_contracts import EVENTS, Addressee, make_iin
from ssu_notification import domain
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("1234567.89", "1 234 567,89 ₸"),
        ("0", "0,00 ₸"),
        ("999.995", "1 000,00 ₸"),
        ("100", "100,00 ₸"),
        ("-1500.5", "-1 500,50 ₸"),
        ("12345678901.2", "12 345 678 901,20 ₸"),
    ],
)
def test_money(amount: str, text: str) -> None:
    assert domain.format_money(Decimal(amount)) == text


def test_dates_and_months() -> None:
    assert domain.format_date(date(2026, 1, 5)) == "05.01.2026"
    assert domain.format_date(datetime(2026, 1, 31, 19, 0, tzinfo=UTC)) == "01.02.2026"
    assert domain.format_period("2026-01", "ru") == "январь 2026"
    assert domain.format_period("2026-12", "kk") == "2026 жылғы желтоқсан"


def test_template_key_drops_the_version() -> None:
    assert domain.template_key("licensing.license.issued.v1") == "licensing.license.issued"


MINOR = make_iin(date(2012, 6, 1), "male", 1)
ADULT = make_iin(date(1980, 6, 1), "female", 1)
GUARDIAN = domain.GuardianContact("Болат Сейтов", None, "+77019998877")


def _addressee(**kw: object) -> Addressee:
    return Addressee(**{"name": "Ерлан", "phone": "+77051112233", "language": "kk", **kw})


def test_guardian_is_chosen_over_a_minor_recipient() -> None:
    person = domain.choose_person(
        iin=MINOR, on=date(2026, 3, 1), addressee=_addressee(), guardian=GUARDIAN
    )
    assert person == domain.Person("guardian", "Болат Сейтов", None, "+77019998877", "kk")


def test_an_adult_recipient_is_told_directly() -> None:
    person = domain.choose_person(
        iin=ADULT, on=date(2026, 3, 1), addressee=_addressee(), guardian=GUARDIAN
    )
    assert person == domain.Person("recipient", "Ерлан", None, "+77051112233", "kk")


def test_a_minor_without_a_known_guardian_is_told_directly() -> None:
    person = domain.choose_person(
        iin=MINOR, on=date(2026, 3, 1), addressee=_addressee(), guardian=None
    )
    assert person.audience == "recipient"


def test_minor_until_the_eighteenth_birthday() -> None:
    assert domain.is_minor(MINOR, date(2030, 5, 31))
    assert not domain.is_minor(MINOR, date(2030, 6, 1))


def test_an_addressee_marked_guardian_by_the_registry_is_a_guardian() -> None:
    person = domain.choose_person(
        iin=ADULT, on=date(2026, 3, 1), addressee=_addressee(is_guardian=True), guardian=None
    )
    assert person.audience == "guardian"


def test_channels() -> None:
    assert domain.channels_of(email="a@b.kz", phone="+7701", audience="provider") == [
        ("email", "a@b.kz"),
        ("sms", "+7701"),
    ]
    assert domain.channels_of(email="a@b.kz", phone="+7701", audience="department") == [
        ("email", "a@b.kz")
    ]
    assert domain.channels_of(email=None, phone=None, audience="recipient") == []


def test_exponential_back_off() -> None:
    delays = [domain.retry_delay(n, base_seconds=5, max_seconds=60) for n in range(1, 7)]
    assert delays == [timedelta(seconds=s) for s in (5, 10, 20, 40, 60, 60)]


def test_signatures_follow_standard_webhooks_with_every_active_secret() -> None:
    body = '{"id":"1","data":{"name":"Әлия"}}'.encode()
    old, new = domain.new_webhook_secret(), domain.new_webhook_secret()
    at = datetime.now(UTC)
    headers = domain.webhook_headers(message_id="msg_1", body=body, secrets_=[new, old], at=at)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    # v1,<base64 HMAC-SHA256 over "id.timestamp.body"> per secret, space-separated.
    raw = base64.b64decode(new.removeprefix("whsec_"))
    mac = hmac.new(raw, f"msg_1.{int(at.timestamp())}.".encode() + body, hashlib.sha256)
    first, second = headers["webhook-signature"].split(" ")
    assert first == "v1," + base64.b64encode(mac.digest()).decode()
    assert second.startswith("v1,") and second != first
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"id": "1", "data": {"name": "Әлия"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(domain.new_webhook_secret()).verify(body, headers)


@pytest.mark.parametrize(
    "address",
    [
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "100.127.255.254",
        "169.254.169.254",  # link-local: the cloud metadata service
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "0.0.0.0",
        "192.0.0.8",
        "192.0.2.10",
        "198.18.0.1",
        "203.0.113.5",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fd12:3456::1",  # unique local (ULA)
        "fe80::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:8.8.8.8",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:db8::1",
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "ff02::1",
    ],
)
def test_special_purpose_addresses_are_never_webhook_destinations(address: str) -> None:
    assert domain.is_special_purpose(address)
    problem = domain.callback_url_problem(
        f"https://{address if ':' not in address else f'[{address}]'}/hook",
        allow_loopback=False,
    )
    assert problem is not None
    assert problem.en == "must not point at a loopback, private or special-purpose address"


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2a00:1450:4001:81a::200e"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert not domain.is_special_purpose(address)


@pytest.mark.parametrize(
    ("url", "allow_loopback", "problem"),
    [
        ("https://hooks.example.kz/ssu", False, None),
        (
            "https://10.20.0.5/hook",
            False,
            "must not point at a loopback, private or special-purpose address",
        ),
        (
            "https://127.0.0.1/hook",
            False,
            "must not point at a loopback, private or special-purpose address",
        ),
        (
            "https://[::1]/hook",
            False,
            "must not point at a loopback, private or special-purpose address",
        ),
        (
            "https://169.254.169.254/latest",
            False,
            "must not point at a loopback, private or special-purpose address",
        ),
        (
            "https://localhost/hook",
            False,
            "must not point at a loopback, private or special-purpose address",
        ),
        (
            "https://10.20.0.5/hook",
            True,
            "must not point at a loopback, private or special-purpose address",
        ),
        ("https://127.0.0.1/hook", True, None),
        ("http://hooks.example.kz/ssu", False, "must use https"),
        ("http://127.0.0.1:9000/hook", False, "must use https"),
        ("http://127.0.0.1:9000/hook", True, None),
        ("http://localhost/hook", True, None),
        ("http://[::1]/hook", True, None),
        (
            "http://hooks.example.kz/ssu",
            True,
            "must use https (http is allowed for loopback addresses only)",
        ),
        ("ftp://hooks.example.kz/ssu", False, "must use https"),
        ("hooks.example.kz/ssu", False, "must be an absolute URL with a host"),
    ],
)
def test_callback_urls(url: str, allow_loopback: bool, problem: str | None) -> None:
    refused = domain.callback_url_problem(url, allow_loopback=allow_loopback)
    assert (refused.en if refused else None) == problem
    if refused:
        # Read by people too: the same refusal in Kazakh and Russian.
        assert refused.kk and refused.ru and refused.kk != refused.en != refused.ru


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_" + base64.b64encode(b"x" * 24).decode(), None),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "must hold at least 24 random bytes"),
        ("whsec_not base64!", "must be a Standard Webhooks secret: whsec_ and base64"),
        (
            "a-long-shared-secret-0123456789",
            "must be a Standard Webhooks secret: whsec_ and base64",
        ),
    ],
)
def test_webhook_secrets(secret: str, problem: str | None) -> None:
    refused = domain.webhook_secret_problem(secret)
    assert (refused.en if refused else None) == problem


def test_a_recipient_without_contacts_is_reached_through_the_guardian() -> None:
    person = domain.choose_person(
        iin=ADULT, on=date(2026, 3, 1), addressee=_addressee(phone=None), guardian=GUARDIAN
    )
    assert person.audience == "guardian" and person.phone == "+77019998877"


async def test_a_callback_host_resolving_into_our_networks_is_refused_at_delivery() -> None:
    from ssu_notification import channels

    with pytest.raises(channels.SendError, match="resolves to a special-purpose address"):
        await channels.send_webhook(
            url="https://localhost:9/hook",
            body=b"{}",
            secrets=[domain.new_webhook_secret()],
            delivery_id="d",
            event_id="e",
            event_type="t",
            timeout=2.0,
        )


def test_every_event_naming_a_person_is_a_personal_event_type() -> None:
    # An IIN or an addressee makes a webhook subscription need registry:read and a region.
    naming = {
        event_type
        for event_type, model in EVENTS.items()
        if {"iin", "addressee"} & set(model.model_fields)
    }
    assert naming == set(domain.PERSONAL_EVENT_TYPES)
    assert {
        "registry.waiting.joined.v1",
        "registry.offer.made.v1",
        "registry.offer.accepted.v1",
        "registry.offer.lapsed.v1",
    } <= domain.PERSONAL_EVENT_TYPES


@pytest.mark.parametrize(
    ("form", "category", "shelter"),
    [
        ("temporary_stay", "domestic_violence", True),
        ("temporary_stay", "elderly", True),
        ("semi_stationary", "domestic_violence", True),
        ("stationary", "elderly", False),
        ("home", "child_disability", False),
    ],
)
def test_a_shelter_is_a_temporary_stay_or_a_place_for_victims_of_violence(
    form: str, category: str, shelter: bool
) -> None:
    assert domain.is_shelter(form, category) is shelter
