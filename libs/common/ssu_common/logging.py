"""structlog JSON logging with correlation context and PII masking (DESIGN §6, §7)."""

import logging
import re
import sys

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

# An IIN's digits 5-6 are the birth day (01-31), a BIN's 5th digit is 4, 5 or 6: masking only
# 12-digit numbers whose 5th digit is 0-3 hides people and keeps organisations readable.
_IIN = re.compile(r"(?<!\d)(\d{2})\d{2}[0-3]\d{5}(\d{2})(?!\d)")
_PHONE = re.compile(r"(?<![\w\d])(?:\+?7|8)[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*(\d{2})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
# Every IIN and phone match holds three digits in a row, every email an `@`: a string with
# neither is returned as it is, without running the three patterns (most log values).
_MAYBE_PII = re.compile(r"@|\d{3}")


def mask_pii(text: str) -> str:
    """Mask every IIN, phone number and email address in a string."""
    if _MAYBE_PII.search(text) is None:
        return text
    text = _EMAIL.sub(r"\1***@\2", text)
    text = _IIN.sub(r"\1********\2", text)
    return _PHONE.sub(r"+7*******\1", text)


def _mask_value(value: object) -> object:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 12:
        return mask_pii(str(value))
    return value


def _mask_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask_value(value)
    return event_dict


def _drop_color_message(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # uvicorn passes an ANSI-coloured copy of its message as `extra`; the JSON has the plain one.
    event_dict.pop("color_message", None)
    return event_dict


class _Stdout:
    """Whatever `sys.stdout` is when a line is written (tests swap it; loggers are cached)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and the standard library (uvicorn, faststream) to masked JSON on stdout.

    structlog's own lines (the access line of every request among them) are rendered and
    written by structlog directly; going through the standard library's logger, handler and
    formatter cost more than half of each line (bench/http.py, py-spy). Libraries' lines still
    come through the standard library, and both are masked the same way.
    """
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        # A call below the level is dropped before any processor runs (per-event debug lines
        # on the hot path cost nothing).
        processors=[
            *shared,
            _mask_processor,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=_Stdout()),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_color_message,
            *shared,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _mask_processor,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A structlog logger; bound context (service, correlation id, event id) is merged in."""
    # `make_filtering_bound_logger` is the wrapper class, configured or by structlog's default.
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
