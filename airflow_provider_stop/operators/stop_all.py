"""Generic stop-all operator: stop every target the service lists as running, within its filters and
its safety rails (``dry_run``, ``max_targets``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_stop.bindings.base import is_templated
from airflow_provider_stop.hooks.data import StopAck, TargetStatus
from airflow_provider_stop.hooks.errors import InvalidInputError, TooManyTargetsError
from airflow_provider_stop.operators.base import StopOperatorBase

if TYPE_CHECKING:
    from airflow_provider_stop._compat import Context
    from airflow_provider_stop.hooks.base import StopServiceHook


class StopAllOperatorBase(StopOperatorBase):
    """Stop every target the service lists as running, optionally only names matching a glob."""

    target_field = "name_pattern"
    service_role = "stop_all_operator"
    #: An operator parameter that narrows the service's list, handed to the hook under the same name
    #: (DataSift's ``source_type``, Amperity's ``workflow_type``).
    list_filter: ClassVar[str | None] = None

    #: How many matches a ``max_targets`` failure names.
    SHOWN_MATCHES: ClassVar[int] = 5

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # every stop-all operator templates its safety rails, whatever its own template fields are
        cls.template_fields = tuple(dict.fromkeys((*cls.template_fields, "dry_run_only", "max_targets")))

    def __init__(
        self,
        *,
        name_pattern: str | None = None,
        dry_run: bool | str = False,
        max_targets: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if name_pattern is not None and not isinstance(name_pattern, str):
            raise InvalidInputError(f"name_pattern must be a glob string or None, got {name_pattern!r}")
        self.name_pattern = name_pattern
        #: ``dry_run`` (kept under another name: ``BaseOperator.dry_run()`` is Airflow's own method).
        self.dry_run_only = dry_run
        self.max_targets = max_targets
        if not is_templated(dry_run):
            as_flag(dry_run, "dry_run")
        if not is_templated(max_targets):
            as_limit(max_targets, "max_targets")

    @staticmethod
    def optional_filter(value: Any, param: str) -> str | None:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInputError(f"{param} must be a non-empty string or None, got {value!r}")
        return value

    def execute(self, context: Context) -> dict[str, Any]:
        if self.list_filter and (value := getattr(self, self.list_filter)):
            # rendered by now; the hook (and the trigger) filter the list with it
            self.hook_params = {**self.hook_params, self.list_filter: value}
        if as_flag(self.dry_run_only, "dry_run"):
            matches = self._matches(self.make_hook(), dry_run=True)
            self.log.info("Dry run: %d would be stopped; nothing was sent", len(matches))
            return {s.target_id: {**s.to_dict(), "details": {**s.details, "dry_run": True}} for s in matches}
        return super().execute(context)

    def target_ids(self) -> list[str]:
        return []

    def check_parameters(self) -> None:
        if self._starts_in_triggerer:
            raise InvalidInputError(
                f"{type(self).__name__} does not start in the triggerer: it lists the running targets on a "
                "worker first; use deferrable=True (the wait then runs in the triggerer)"
            )
        if not is_templated(getattr(self, self.conn_id_field)):
            self.conn_id()

    def filtered(self) -> bool:
        """True when the list was narrowed (``name_pattern`` or the list filter): the hook then stops
        the matches by id, never with a service-wide stop that would reach the others too."""
        return bool(self.name_pattern) or bool(self.list_filter and getattr(self, self.list_filter))

    def send_stops(self, hook: StopServiceHook, target_ids: list[str]) -> dict[str, StopAck]:
        return hook.stop_all_targets(target_ids, filtered=self.filtered(), **self.stop_options())

    def resolve_targets(self, hook: StopServiceHook) -> list[str]:
        return [status.target_id for status in self._matches(hook)]

    def _matches(self, hook: StopServiceHook, dry_run: bool = False) -> list[TargetStatus]:
        """The running targets the filters match; more than ``max_targets`` fails before any stop (a dry
        run says so and still lists them)."""
        matches = hook.running_statuses(self.name_pattern or None)
        where = f" matching {self.name_pattern!r}" if self.name_pattern else ""
        self.log.info(
            "%d running %s(s)%s: %s", len(matches), hook.target_noun, where, [s.target_id for s in matches]
        )
        limit = as_limit(self.max_targets, "max_targets")
        if limit is not None and len(matches) > limit:
            shown = ", ".join(
                f"{s.target_id!r}"
                + (f" ({s.details['name']})" if s.details.get("name") else "")
                + f" {s.raw_state}"
                for s in matches[: self.SHOWN_MATCHES]
            )
            more = (
                f" and {len(matches) - self.SHOWN_MATCHES} more" if len(matches) > self.SHOWN_MATCHES else ""
            )
            error = TooManyTargetsError(
                f"{self.service_label()}: {len(matches)} running {hook.target_noun}(s){where}, more than "
                f"max_targets={limit}; nothing was stopped. Matches: {shown}{more}"
            )
            if not dry_run:
                raise error
            self.log.warning("Dry run: without it, the task would fail: %s", error)
        return matches


def as_flag(value: Any, param: str) -> bool:
    """A boolean parameter, also as Jinja renders one (``"True"``, ``"false"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInputError(f"{param} must be True or False, got {value!r}")


def as_limit(value: Any, param: str) -> int | None:
    """A positive whole number or None, also as Jinja renders one (``"20"``, ``"None"``)."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{param} must be a whole number of at least 1, or None; got {value!r}")
    return value
