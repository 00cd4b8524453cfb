"""Shared vocabulary of the suite (DESIGN §3)."""

from enum import StrEnum


class ServiceForm(StrEnum):
    STATIONARY = "stationary"
    SEMI_STATIONARY = "semi_stationary"
    HOME = "home"
    TEMPORARY_STAY = "temporary_stay"


class RecipientCategory(StrEnum):
    CHILD_DISABILITY = "child_disability"
    ADULT_DISABILITY = "adult_disability"
    ELDERLY = "elderly"
    DOMESTIC_VIOLENCE = "domestic_violence"
    HOMELESS = "homeless"
    OTHER = "other"


class LegalForm(StrEnum):
    STATE = "state"
    NGO = "ngo"
    PRIVATE = "private"


class Language(StrEnum):
    KK = "kk"
    RU = "ru"


class LicenseStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    DISRUPTED = "disrupted"
    ENDED = "ended"


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class DeliveryChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


# Forms whose sites have a number of places that enrollments may not exceed.
RESIDENTIAL_FORMS: frozenset[ServiceForm] = frozenset(
    {ServiceForm.STATIONARY, ServiceForm.SEMI_STATIONARY, ServiceForm.TEMPORARY_STAY}
)
