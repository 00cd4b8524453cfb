"""Which service consumes which events: the suite's queues and bindings, known to every service.

The deployment declares all of them before any service starts (broker.declare_suite_topology;
compose and Kubernetes from their definitions), so an event is never published to `ssu.events`
before the queue of a consumer that reads it exists (DESIGN §2); each service also declares its
own at start-up. Each service's `HANDLERS` are exactly its line here (a test holds them together).
"""

from ssu_contracts import EVENTS

EVENTS_EXCHANGE_NAME = "ssu.events"
DEAD_LETTER_EXCHANGE_NAME = "ssu.dlx"

_LICENSE_EVENTS = tuple(t for t in EVENTS if t.startswith("licensing.license."))
# An enrollment's life; `registry.enrollment.unplaced.v1` is the notice to the people of a
# revocation and comes with the enrollment's `ended`, which is what billing and portal follow.
_ENROLLMENT_EVENTS = tuple(
    t
    for t in EVENTS
    if t.startswith("registry.enrollment.") and t != "registry.enrollment.unplaced.v1"
)

# A new consuming service is one more line.
CONSUMERS: dict[str, tuple[str, ...]] = {
    "licensing": ("registry.enrollment.started.v1", "registry.enrollment.ended.v1"),
    "registry": _LICENSE_EVENTS,
    # A de-registration for death fills billing's `deaths` (the run pays no later date).
    "billing": _LICENSE_EVENTS + _ENROLLMENT_EVENTS + ("registry.recipient.deregistered.v1",),
    "notification": tuple(t for t in EVENTS if not t.startswith("notification.")),
    "portal": _LICENSE_EVENTS
    + _ENROLLMENT_EVENTS
    + (
        "licensing.application.submitted.v1",
        "licensing.application.rejected.v1",
        "registry.recipient.registered.v1",
        "billing.invoice.issued.v1",
    ),
}
