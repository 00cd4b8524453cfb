"""API fuzzing: schemathesis against each service's OpenAPI, the services as real processes.

The four services run as `python -m ssu_<service>` on fresh test databases; each one's schema is
loaded from its own `/openapi.json`. Every operation gets a bounded, seeded (derandomized) number
of generated requests, valid data and invalid data, each sent with the admin key. Every answer
must be:
- never a 5xx (schemathesis's `not_a_server_error`);
- conforming to the schema the operation documents for that status, where it documents one
  (schemathesis's `response_schema_conformance`);
- when it is a 4xx, an RFC 9457 problem body (`application/problem+json` with `type`, `title`,
  `status` equal to the HTTP status, and `detail`): the `problem_details` check below.

Failures found and not fixed yet are listed in `KNOWN_FAILURES` (by operation) with the
reason: they are printed and given as warnings but do not fail the run; any other failure
does. Run with `-s` (or `-rP`) to see per service the number of operations and cases, the
statuses answered and each failure with a reproducing request.
`SSU_FUZZ_EXAMPLES` (default 20 per operation and mode) raises the count for a deeper run.
"""

import asyncio
import contextlib
import importlib
import json
import os
import pkgutil
import re
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from harness import ADMIN, ServiceProcess, processes, reset_service, spawn_service, wait_ready
from hypothesis import HealthCheck, Phase
from schemathesis import Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

# schemathesis imports most of itself lazily, and pytest rewrites the modules of a plugin as
# they are imported. In the fuzzing thread (asyncio.to_thread) CPython 3.11.7's parser then
# fails now and then with "SystemError: AST constructor recursion depth mismatch" (a CPython
# bug): every module is imported here, once, in the main thread at collection (about 2 s).
for _module in pkgutil.walk_packages(schemathesis.__path__, "schemathesis."):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module.name)

SERVICES = ("licensing", "registry", "billing", "notification")
MAX_EXAMPLES = int(os.environ.get("SSU_FUZZ_EXAMPLES", "20"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
PROBLEM_JSON = "application/problem+json"

# Failures found by this test and not fixed yet: reported (printed, and as warnings) but not
# failing the run, as `xfail(strict=False)` would. Remove an entry once the service is fixed.
#
# (service, "METHOD /path") -> why it fails.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def known_reason(service: str, operation: str) -> str | None:
    return KNOWN_FAILURES.get((service, operation))


class KnownFuzzFailure(UserWarning):
    """A failure listed as known: reported, not failing the run."""


def problem_details(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is an RFC 9457 problem body."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert content_type == PROBLEM_JSON, (
        f"{response.status_code} answered as {content_type!r}, not {PROBLEM_JSON}"
    )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {exc}") from None
    assert isinstance(body, dict), f"problem body is not an object: {body!r}"
    missing = [m for m in ("type", "title", "status", "detail") if m not in body]
    assert not missing, f"problem body lacks {missing}: {body!r}"
    assert isinstance(body["type"], str), f"type is not a string: {body!r}"
    assert isinstance(body["title"], str), f"title is not a string: {body!r}"
    assert isinstance(body["detail"], str), f"detail is not a string: {body!r}"
    assert body["status"] == response.status_code, (
        f"status member {body['status']!r} differs from HTTP {response.status_code}"
    )
    return None


def documented_schema(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The response conforms to the schema documented for its status.

    The 422 every FastAPI route documents by default (`HTTPValidationError`, a `detail` list) is
    not what the services answer: they answer problem details, which `problem_details` checks.
    """
    if response.status_code == 422:
        return None
    return response_schema_conformance(ctx, response, case)


CHECKS: list[CheckFunction] = [not_a_server_error, documented_schema, problem_details]

# Requests without the key (or with a wrong one) are the authorization matrix's business: here
# every request carries the admin key, so the fuzzed input reaches the handlers.
CONFIG = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})


@dataclass
class Finding:
    operation: str
    check: str
    status: int
    request: str
    message: str
    known: str | None
    count: int = 1


@dataclass
class Outcome:
    service: str
    operations: int = 0
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: dict[tuple[str, str, str | None], Finding] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def reproduction(case: Case, response: Response) -> str:
    request = response.request
    raw = request.body
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
    text = f"{case.method.upper()} {request.url}"
    if body:
        content_type = request.headers.get("Content-Type", "")
        text += f"\n      content-type: {content_type!s}\n      body: {body[:600]}"
    return text


def fuzz_operation(operation: Any, base_url: str, session: requests.Session, out: Outcome) -> None:
    label = operation.label
    for mode in MODES:
        strategy = operation.as_strategy(generation_mode=mode)

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @hypothesis.given(case=strategy)
        def run(case: Case) -> None:
            response = case.call(base_url=base_url, session=session, headers=ADMIN, timeout=30)
            out.cases += 1
            out.statuses[response.status_code] = out.statuses.get(response.status_code, 0) + 1
            try:
                case.validate_response(response, checks=CHECKS, headers=ADMIN)
            except FailureGroup as group:
                failures: list[Failure] = list(group.exceptions)
            except Failure as one:
                failures = [one]
            else:
                return
            for failure in failures:
                status = response.status_code
                known = known_reason(out.service, label)
                key = (label, failure.title, known)
                if key in out.findings:
                    out.findings[key].count += 1
                else:
                    out.findings[key] = Finding(
                        operation=label,
                        check=failure.title,
                        status=status,
                        request=reproduction(case, response),
                        message=str(failure.message)[:800],
                        known=known,
                    )

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): the negative mode has no case.
            if mode is GenerationMode.POSITIVE:
                out.errors.append(f"{label}: no valid case could be generated")


def fuzz_service(service: str, base_url: str) -> Outcome:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=CONFIG)
    out = Outcome(service=service)
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                out.errors.append(f"invalid operation in the schema: {result.err()}")
                continue
            operation = result.ok()
            out.operations += 1
            fuzz_operation(operation, base_url, session, out)
    return out


def unhandled_errors(log_path: Path) -> list[str]:
    """The `http.unhandled` events a service logged: the path and the exception's last line."""
    found = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "http.unhandled":
            exception = str(event.get("exception", "")).strip().splitlines()
            found.append(f"{event.get('path')}: {exception[-1] if exception else '?'}")
    return found


@pytest.fixture(scope="module")
async def services(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, ServiceProcess]]:
    """The four services as real processes on fresh test databases."""
    log_dir: Path = tmp_path_factory.mktemp("fuzz-logs")
    for service in SERVICES:
        await reset_service(service)
    procs = {s: spawn_service(s, log_dir=log_dir) for s in SERVICES}
    with processes(*procs.values()):
        await asyncio.gather(*(wait_ready(p) for p in procs.values()))
        yield procs


def documents_success_body(op: dict[str, Any]) -> bool:
    """Whether an operation documents a 2xx body more precise than "any object"."""
    for code, response in op.get("responses", {}).items():
        if not code.startswith("2"):
            continue
        for content in response.get("content", {}).values():
            schema = content.get("schema", {})
            if schema and not (
                schema.get("type") == "object"
                and schema.get("additionalProperties") is True
                and "properties" not in schema
            ):
                return True
    return False


def openapi_operations(url: str) -> list[tuple[str, dict[str, Any]]]:
    doc = requests.get(f"{url}/openapi.json", timeout=10).json()
    return [
        (f"{method.upper()} {path}", op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    ]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("service", SERVICES)
async def test_fuzz(service: str, services: dict[str, ServiceProcess]) -> None:
    proc = services[service]
    started = time.monotonic()
    out = await asyncio.to_thread(fuzz_service, service, proc.url)
    elapsed = time.monotonic() - started

    described = sum(documents_success_body(op) for _, op in openapi_operations(proc.url))
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(out.statuses.items()))
    failing = sorted({f.operation for f in out.findings.values()})
    print(
        f"\nfuzz {service}: {out.operations} operations ({described} with a documented 2xx "
        f"body schema), {out.cases} cases in {elapsed:.1f}s, {MAX_EXAMPLES} examples per "
        f"operation and mode; statuses {{{statuses}}}; "
        + (f"{len(failing)} operation(s) failing" if failing else "no failure")
    )
    unexpected = []
    for finding in out.findings.values():
        print(
            f"  [{'KNOWN' if finding.known else 'NEW'}] {finding.operation}: {finding.check} "
            f"(HTTP {finding.status}, {finding.count} case(s))\n"
            f"    {finding.request}\n    {finding.message.strip()}"
        )
        if finding.known:
            print(f"    known: {finding.known}")
            warnings.warn(
                f"fuzz {service} {finding.operation}: {finding.known}",
                KnownFuzzFailure,
                stacklevel=1,
            )
        else:
            unexpected.append(finding)
    for (name, label), reason in KNOWN_FAILURES.items():
        if name == service and label not in failing:
            print(f"  [KNOWN, not seen this run] {label}: {reason}")
    for error in sorted(set(unhandled_errors(proc.log_path))):
        print(f"  logged: {error}")
    assert out.operations > 0
    assert out.errors == []
    assert unexpected == []


async def test_documented_errors_are_problem_details(
    services: dict[str, ServiceProcess],
) -> None:
    """What the OpenAPI documents for 4xx matches what the services answer."""
    wrong = []
    for name, proc in services.items():
        for label, op in openapi_operations(proc.url):
            for code, response in op.get("responses", {}).items():
                if code.startswith("4") and PROBLEM_JSON not in response.get("content", {}):
                    wrong.append(f"{name} {label} {code}")
    print(f"\n{len(wrong)} documented 4xx responses are not problem details, e.g. {wrong[:3]}")
    assert wrong == []


def plain_response(status: int, content_type: str, body: bytes) -> Response:
    request = requests.Request("GET", "http://127.0.0.1/v1/x").prepare()
    return Response(
        status_code=status,
        headers={"content-type": [content_type]},
        content=body,
        request=request,
        elapsed=0.01,
        verify=True,
    )


@pytest.mark.parametrize(
    ("status", "content_type", "body", "error"),
    [
        (404, "application/json", b'{"detail": "Not Found"}', "not application/problem+json"),
        (
            422,
            PROBLEM_JSON,
            b'{"detail": [{"loc": ["body"]}]}',
            "lacks ['type', 'title', 'status']",
        ),
        (409, PROBLEM_JSON, b"not json", "body is not JSON"),
        (
            400,
            PROBLEM_JSON,
            b'{"type": "about:blank", "title": "Bad Request", "status": 422, "detail": "x"}',
            "status member 422 differs from HTTP 400",
        ),
    ],
)
def test_problem_check_refuses_other_error_bodies(
    status: int, content_type: str, body: bytes, error: str
) -> None:
    with pytest.raises(AssertionError, match=re.escape(error)):
        problem_details(None, plain_response(status, content_type, body), None)  # type: ignore[arg-type]


def test_problem_check_accepts_problem_details_and_ignores_success() -> None:
    body = b'{"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no such x"}'
    assert problem_details(None, plain_response(404, PROBLEM_JSON, body), None) is None  # type: ignore[arg-type]
    assert problem_details(None, plain_response(200, "text/csv", b"a,b"), None) is None  # type: ignore[arg-type]
