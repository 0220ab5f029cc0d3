"""Form state: what the user typed, and each error next to the field at fault.

Services raise :class:`FuyunError` with ``.field`` named as the API names it
(``cidr``, ``prefix_len``, ``flavor``, ``vcpus``…). A form lists its own inputs and
maps service field names onto them (a VM form shows a ``vcpus`` quota refusal at
``count``); anything it cannot place is shown above the form. Either way the page
is re-rendered with the user's input intact and a 4xx status.

Every create form has the same shape, so it is written once: the posted text arrives
as a :class:`Posted` model (one ``str`` per input, ``""`` when the browser sent none),
and :func:`submit` runs the route's attempt — parse, call the service, redirect — and
on a :class:`FuyunError` re-renders the page with the error at its field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from fuyun.domain.errors import FuyunError, InvalidInput


@dataclass
class FormState:
    fields: tuple[str, ...]
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    general: str | None = None
    status: int = 200
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.general)

    def fail(self, exc: FuyunError) -> FormState:
        """Place the error at its field, or above the form; remember the HTTP status."""
        name = self.aliases.get(exc.field or "", exc.field)
        if name in self.fields:
            self.errors[name] = exc.message
        else:
            self.general = exc.message
        self.status = exc.status if exc.status < 500 else 422
        return self

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)


def blank(fields: Iterable[str], **values: Any) -> FormState:
    return FormState(fields=tuple(fields), values=dict(values))


class Posted(BaseModel):
    """The inputs of one form as posted: declare one ``str`` field per input (default
    ``""``) and take it in a route as ``Annotated[MyForm, Form()]``. ``csrf`` and any
    other extra field are ignored here (the session checks the token)."""

    model_config = ConfigDict(extra="ignore")
    aliases: ClassVar[Mapping[str, str]] = {}  # service field -> input, e.g. vcpus -> count

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def blank(cls, **values: Any) -> FormState:
        """The empty form a GET shows, with these defaults."""
        return FormState(cls.fields(), values=dict(values), aliases=cls.aliases)

    def state(self) -> FormState:
        """What was typed, to show again if the attempt fails."""
        return FormState(self.fields(), values=self.model_dump(), aliases=self.aliases)


def submit(
    form: FormState,
    attempt: Callable[[], Response],
    again: Callable[[FormState], Response],
) -> Response:
    """``attempt()`` (parse, call the service, answer — usually a redirect); if it raises
    a :class:`FuyunError`, ``again(form)`` re-renders the page with the error placed at
    its field and the input kept. Anything else propagates (a 500 is not a form error)."""
    try:
        return attempt()
    except FuyunError as exc:
        return again(form.fail(exc))


def optional_int(
    raw: str, name: str, *, low: int | None = None, high: int | None = None
) -> int | None:
    """An integer form field (empty means "not given"), or a 422 naming the field."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"'{raw}' is not a whole number", field=name) from None
    if (low is not None and value < low) or (high is not None and value > high):
        span = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if low is not None else f"at most {high}")
        )
        raise InvalidInput(f"must be {span}", field=name)
    return value


def required_int(raw: str, name: str, *, low: int | None = None, high: int | None = None) -> int:
    value = optional_int(raw, name, low=low, high=high)
    if value is None:
        raise InvalidInput("is required", field=name)
    return value


def optional_choice(raw: str, name: str, what: str = "one") -> uuid.UUID | None:
    """An id picked from a select (empty means "not given"), or a 422 naming the field."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(f"choose {what} from the list", field=name) from None


def tenant_choice(raw: str) -> uuid.UUID | None:
    return optional_choice(raw, "tenant_id", "a tenant")


def optional_str(raw: str) -> str | None:
    raw = raw.strip()
    return raw or None
