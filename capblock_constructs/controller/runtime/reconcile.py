"""One controller run: read every reservation live, size every group, say what changed.

The run is level-triggered and idempotent: it computes each group's size from the
reservation as EC2 describes it now and the run's moment, and calls an update API
only when the live size differs. Running it twice, late, or from a retried event
changes nothing that one timely run would not have. The notification memory in SSM
only stops messages from repeating; sizing never reads it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .aws import ACCESS_DENIED_CODES, THROTTLING_CODES, Clients, describe_exception, error_code
from .config import ControllerConfig, GroupConfig
from .events import Invocation, Trigger, format_time, parse_invocation
from .memory import MAX_PARAMETER_BYTES, Memory
from .phase import (
    ACTIVE_STATE,
    EKS_MANAGED_SCALE_DOWN_LEAD,
    UNUSABLE_STATES,
    Decision,
    GroupKind,
    Phase,
    ReservationFacts,
    decide,
)

if TYPE_CHECKING:
    from mypy_boto3_autoscaling.type_defs import AutoScalingGroupTypeDef

__all__ = [
    "EKS_ACTION_MARKER",
    "GroupReport",
    "Notice",
    "RunReport",
    "guarded_size",
    "reconcile",
]

LOG = logging.getLogger("capblock_constructs.controller")

Clock = Callable[[], datetime]

EKS_ACTION_MARKER = "capacity scaledown before reservation end"
"""Part of the name EKS gives its own scale-down action ("Amazon EKS Node Group Capacity
Scaledown Before Reservation End"), matched without regard to case."""
EKS_ACTION_TOLERANCE = timedelta(minutes=1)
"""How much earlier than ``end - 40 min`` EKS's action may be before it is called stale."""
NOT_REACHED_PERIODS = 5
NOT_REACHED_FLOOR = timedelta(minutes=10)
"""A group that stays below the size the controller set for max(5 periods, 10 minutes) is
reported: EC2 needs a few minutes to launch and EKS to join a node, not ten."""
READY_NODEGROUP_STATUSES = frozenset({"ACTIVE", "DEGRADED"})
"""Node group statuses in which ``UpdateNodegroupConfig`` is accepted."""
NOT_FOUND_STATE = "not-found"
"""Stands for a reservation ``DescribeCapacityReservations`` does not return."""
REMINDER_STATES = frozenset({"scheduled", ACTIVE_STATE})
SUBJECT_LIMIT = 100
"""SNS subjects: at most 100 ASCII characters."""
ASG_NAMES_PER_CALL = 50
"""``DescribeAutoScalingGroups`` takes at most 50 names per request."""


@dataclass(frozen=True, kw_only=True)
class Notice:
    """One SNS message the run published (or tried to)."""

    kind: str
    """``scaled-up``, ``scaled-down``, ``drain``, ``end-moved``, ``bad-state``,
    ``not-reached``, ``reminder``, ``eks-action``, ``group-missing`` or ``interruption``."""
    subject: str
    message: str
    reservation: str | None = None
    group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "reservation": self.reservation,
            "group": self.group,
        }


@dataclass(frozen=True, kw_only=True)
class GroupReport:
    """What the run found and did for one group; also its structured log line."""

    id: str
    kind: str
    reservation: str
    resource: str
    phase: str
    """The phase at the moment that decided the size, or ``unknown`` when nothing was read."""
    current: int | None
    """The size found; ``None`` when the group could not be read."""
    wanted: int | None
    action: str
    """``none`` (already right), ``scaled``, ``skipped`` (left for the next period),
    ``not-found`` or ``error``."""
    detail: str = ""
    drain_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.id,
            "kind": self.kind,
            "reservation": self.reservation,
            "resource": self.resource,
            "phase": self.phase,
            "current": self.current,
            "wanted": self.wanted,
            "action": self.action,
            "detail": self.detail,
            "drainAt": self.drain_at,
        }


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """Everything one run saw and did; the handler returns :meth:`to_dict`."""

    trigger: str
    moment: datetime
    clock: datetime
    reservations: Mapping[str, Mapping[str, Any]]
    """Per reservation ID: state, start, end and count as read, or the state ``not-found``."""
    groups: tuple[GroupReport, ...]
    notices: tuple[Notice, ...]
    errors: tuple[str, ...]
    """Unexpected failures; the handler raises after the run when there is any."""
    deferred: tuple[str, ...]
    """Expected conditions left for the next period (a node group still updating)."""
    warnings: tuple[str, ...]
    """Problems that cost nothing but a message (the memory could not be read or written)."""
    memory_written: bool

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "moment": format_time(self.moment),
            "clock": format_time(self.clock),
            "reservations": {key: dict(value) for key, value in self.reservations.items()},
            "groups": [group.to_dict() for group in self.groups],
            "notifications": [notice.to_dict() for notice in self.notices],
            "errors": list(self.errors),
            "deferred": list(self.deferred),
            "warnings": list(self.warnings),
            "memoryWritten": self.memory_written,
        }

    def summary(self) -> str:
        """One paragraph for a CloudFormation response's Reason."""
        sized = "; ".join(
            f"{group.id}: {group.phase}, {group.current}->{group.wanted} ({group.action})"
            for group in self.groups
        )
        parts = [f"Controller run at {format_time(self.moment)}: {sized or 'no groups'}."]
        left = [*self.deferred, *self.errors]
        if left:
            parts.append("Left for the next period: " + "; ".join(left) + ".")
        return " ".join(parts)


def guarded_size(*, current: int, at_event: Decision, at_later: Decision) -> int:
    """The size to set, from the decisions at the event's moment and at the later of it and
    the clock.

    The later moment governs, since the reservation was read now and time only moves on
    (so a drain is never applied later than the event said). A raise must also be allowed
    at the event's own moment, and a late event from before the start never lowers a group
    the later moment keeps up: a retried or late-delivered event moves no group the wrong way.
    """
    if at_later.size <= current:
        return at_later.size
    return max(current, min(at_event.size, at_later.size))


def reconcile(
    config: ControllerConfig,
    *,
    clients: Clients,
    clock: Clock,
    event: Mapping[str, Any] | None = None,
    moment: datetime | None = None,
) -> RunReport:
    """Size every configured group for the invocation's moment and notify what changed.

    :param config: The checked configuration.
    :param clients: The AWS clients; see :class:`~.aws.Clients`.
    :param clock: Returns the current time (timezone-aware); read once per run.
    :param event: The invocation's event. Defaults to none: a run at the clock.
    :param moment: The moment to act for. Defaults to the event's top-level ``time``, else
        the clock.
    :returns: The report; the caller decides whether its errors fail the invocation.
    """
    invocation = parse_invocation(event or {})
    return _Run(config, clients=clients, clock=clock, invocation=invocation, moment=moment).run()


@dataclass
class _Observed:
    """One group's live state as read this run (mutable: filled in as calls return)."""

    current: int | None = None
    max_size: int | None = None
    running: int | None = None
    asg_names: tuple[str, ...] = ()
    status: str | None = None


@dataclass
class _Run:
    config: ControllerConfig
    clients: Clients
    clock: Clock
    invocation: Invocation
    moment: datetime | None
    # Filled in during the run.
    started: datetime = field(init=False)
    later: datetime = field(init=False)
    memory: Memory = field(init=False, default_factory=Memory)
    memory_text: str | None = field(init=False, default=None)
    memory_ok: bool = field(init=False, default=True)
    facts: dict[str, ReservationFacts] = field(init=False, default_factory=dict)
    missing: set[str] = field(init=False, default_factory=set)
    reservations_ok: bool = field(init=False, default=True)
    reports: list[GroupReport] = field(init=False, default_factory=list)
    notices: list[Notice] = field(init=False, default_factory=list)
    errors: list[str] = field(init=False, default_factory=list)
    deferred: list[str] = field(init=False, default_factory=list)
    warnings: list[str] = field(init=False, default_factory=list)
    decisions: dict[str, Decision] = field(init=False, default_factory=dict)
    asg_error: BaseException | None = field(init=False, default=None)
    """Why the one DescribeAutoScalingGroups call for self-managed groups failed, if it did."""

    def __post_init__(self) -> None:
        self.started = _aware(self.clock(), "the clock")
        if self.moment is None:
            self.moment = self.invocation.moment or self.started
        self.moment = _aware(self.moment, "moment")
        # A moment ahead of the clock (skew) counts as the later one itself.
        self.later = max(self.moment, self.started)
        if self.invocation.time_problem:
            self.warnings.append(self.invocation.time_problem)

    @property
    def at(self) -> datetime:
        assert self.moment is not None
        return self.moment

    # ----------------------------------------------------------------------------- the run

    def run(self) -> RunReport:
        self._read_memory()
        if self.invocation.trigger is Trigger.INTERRUPTION:
            self._notify_interruption()
        self._read_reservations()
        self._reservation_notices()
        asgs = self._read_self_managed()
        managed_checks: list[tuple[GroupConfig, _Observed]] = []
        for group in self.config.groups:
            observed = _Observed()
            try:
                report = self._size_group(group, asgs, observed)
            except Exception as exc:  # noqa: BLE001 - one group's failure must not stop the rest
                report = self._group_error(group, exc, "sizing it")
            self.reports.append(report)
            _log_group(report)
            if group.kind is GroupKind.MANAGED and observed.asg_names:
                managed_checks.append((group, observed))
        self._check_managed_running(managed_checks)
        self._check_eks_actions(managed_checks)
        self._reminders()
        written = self._write_memory()
        reservations = {
            rid: (
                {
                    "state": facts.state,
                    "start": format_time(facts.start),
                    "end": format_time(facts.end),
                    "instanceCount": facts.instance_count,
                }
                if (facts := self.facts.get(rid)) is not None
                else {"state": NOT_FOUND_STATE if rid in self.missing else "unknown"}
            )
            for rid in self.config.reservation_ids
        }
        return RunReport(
            trigger=self.invocation.trigger.value,
            moment=self.at,
            clock=self.started,
            reservations=reservations,
            groups=tuple(self.reports),
            notices=tuple(self.notices),
            errors=tuple(self.errors),
            deferred=tuple(self.deferred),
            warnings=tuple(self.warnings),
            memory_written=written,
        )

    # ------------------------------------------------------------------------------ memory

    def _read_memory(self) -> None:
        name = self.config.state_parameter
        try:
            answer = self.clients.ssm.get_parameter(Name=name)
            text = answer["Parameter"]["Value"]
        except Exception as exc:  # noqa: BLE001 - sizing goes on without the memory
            if error_code(exc) == "ParameterNotFound":
                # Deleted by hand: start afresh; the write at the end recreates it.
                self._warn(f"the state parameter {name} does not exist; it is recreated")
                self.memory_text = None
                return
            self.memory_ok = False
            self._warn(
                f"could not read the state parameter {name} ({describe_exception(exc)}); groups "
                "are sized anyway, but notifications that must not repeat wait for a run that "
                "can read it. Grant ssm:GetParameter on it"
            )
            return
        try:
            self.memory = Memory.loads(text)
        except ValueError as exc:
            self._warn(
                f"the state parameter {name} holds {text[:80]!r}, which is not the controller's "
                f"memory ({exc}); it is started afresh"
            )
            return
        self.memory_text = text

    def _write_memory(self) -> bool:
        if not self.memory_ok:
            return False
        self.memory.prune(
            reservation_ids=set(self.config.reservation_ids),
            group_ids={group.id for group in self.config.groups},
        )
        text = self.memory.dumps()
        if text == self.memory_text:
            return False
        if len(text.encode()) > MAX_PARAMETER_BYTES:
            self._warn(
                f"the notification memory has grown to {len(text.encode())} bytes, more than the "
                f"{MAX_PARAMETER_BYTES} a standard parameter holds; it is not saved, so some "
                "notifications may repeat. Split the groups across controllers"
            )
            return False
        try:
            self.clients.ssm.put_parameter(
                Name=self.config.state_parameter, Value=text, Type="String", Overwrite=True
            )
        except Exception as exc:  # noqa: BLE001 - a lost memory repeats messages, nothing more
            self._warn(
                f"could not write the state parameter {self.config.state_parameter} "
                f"({describe_exception(exc)}); some notifications may repeat. Grant "
                "ssm:PutParameter on it"
            )
            return False
        return True

    # ------------------------------------------------------------------------ reservations

    def _read_reservations(self) -> None:
        ids = list(self.config.reservation_ids)
        if not ids:
            return
        try:
            found = self._describe_reservations(ids)
        except Exception as exc:  # noqa: BLE001 - reported per group below
            if error_code(exc) != "InvalidCapacityReservationId.NotFound":
                self.reservations_ok = False
                self._error(f"could not read the reservations ({describe_exception(exc)})")
                return
            # One unknown ID fails the whole request; ask for each to learn which.
            found = {}
            for rid in ids:
                try:
                    found.update(self._describe_reservations([rid]))
                except Exception as single:  # noqa: BLE001
                    if error_code(single) != "InvalidCapacityReservationId.NotFound":
                        self.reservations_ok = False
                        self._error(f"could not read {rid} ({describe_exception(single)})")
                        return
        for rid in ids:
            item = found.get(rid)
            if item is None:
                self.missing.add(rid)
                continue
            start, end = item.get("StartDate"), item.get("EndDate")
            if start is None or end is None:
                # An open-ended On-Demand Capacity Reservation, not a Capacity Block.
                self._error(
                    f"{rid} has no {'StartDate' if start is None else 'EndDate'}; it is not a "
                    "Capacity Block. Point the groups at the block's reservation ID"
                )
                continue
            self.facts[rid] = ReservationFacts(
                state=str(item.get("State", "unknown")),
                start=start.astimezone(timezone.utc),
                end=end.astimezone(timezone.utc),
                instance_count=int(item.get("TotalInstanceCount", 0)),
            )

    def _describe_reservations(self, ids: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        token: str | None = None
        while True:
            if token:
                answer = self.clients.ec2.describe_capacity_reservations(
                    CapacityReservationIds=ids, NextToken=token
                )
            else:
                answer = self.clients.ec2.describe_capacity_reservations(CapacityReservationIds=ids)
            for item in answer.get("CapacityReservations", []):
                found[item["CapacityReservationId"]] = item
            token = answer.get("NextToken")
            if not token:
                return found

    def _groups_on(self, rid: str) -> list[GroupConfig]:
        return [group for group in self.config.groups if group.reservation == rid]

    def _reservation_notices(self) -> None:
        """End moved, bad state, not found: once each, remembered per reservation."""
        for rid in self.config.reservation_ids:
            groups = self._groups_on(rid)
            names = _names(groups)
            memo = self.memory.reservation(rid)
            facts = self.facts.get(rid)
            state = facts.state if facts else NOT_FOUND_STATE if rid in self.missing else None
            if state is None:
                continue
            if state in UNUSABLE_STATES or state == NOT_FOUND_STATE:
                if (
                    memo.bad != state
                    and self.memory_ok
                    and self._publish(_bad_state_notice(rid, state, names, facts))
                ):
                    memo.bad = state
            else:
                memo.bad = None
            if facts is None:
                continue
            end = format_time(facts.end)
            if memo.end is None:
                # The first sight only records the end: there is nothing to compare with.
                memo.end = end
            elif memo.end != end:
                drains = ", ".join(
                    f"{group.id} drains at {format_time(facts.end - group.drain_lead)}"
                    for group in groups
                )
                notice = Notice(
                    kind="end-moved",
                    reservation=rid,
                    subject=f"Capacity Block {rid}: end moved to {_human(facts.end)}",
                    message=(
                        f"The end of Capacity Block {rid} moved from {memo.end} to {end} "
                        "(an extension was bought, or its payment settled). No EC2 event "
                        "announces this; the controller read it from "
                        "DescribeCapacityReservations.\n\n"
                        f"Groups now follow the new end: {drains or 'none configured'}.\n"
                        "Jobs can be planned up to the new drain times."
                    ),
                )
                if self._publish(notice):
                    memo.end = end
                    memo.moved = True
                    memo.reminded = []

    # ---------------------------------------------------------------------------- sizing

    def _read_self_managed(self) -> dict[str, AutoScalingGroupTypeDef] | None:
        """Every self-managed group's ASG in as few calls as possible; None when unreadable."""
        names = [
            group.auto_scaling_group_name
            for group in self.config.groups
            if group.kind is GroupKind.SELF_MANAGED and group.auto_scaling_group_name
        ]
        if not names:
            return {}
        try:
            return self._describe_asgs(names)
        except Exception as exc:  # noqa: BLE001 - reported per group
            self.asg_error = exc
            return None

    def _describe_asgs(self, names: Sequence[str]) -> dict[str, AutoScalingGroupTypeDef]:
        found: dict[str, AutoScalingGroupTypeDef] = {}
        for first in range(0, len(names), ASG_NAMES_PER_CALL):
            chunk = list(names[first : first + ASG_NAMES_PER_CALL])
            token: str | None = None
            while True:
                if token:
                    answer = self.clients.autoscaling.describe_auto_scaling_groups(
                        AutoScalingGroupNames=chunk, NextToken=token
                    )
                else:
                    answer = self.clients.autoscaling.describe_auto_scaling_groups(
                        AutoScalingGroupNames=chunk
                    )
                for item in answer["AutoScalingGroups"]:
                    found[item["AutoScalingGroupName"]] = item
                token = answer.get("NextToken")
                if not token:
                    break
        return found

    def _decisions(self, group: GroupConfig) -> tuple[Decision, Decision] | None:
        facts = self.facts.get(group.reservation)
        if facts is None:
            return None
        at_event = decide(
            facts, moment=self.at, drain_lead=group.drain_lead, target_size=group.wanted_size
        )
        at_later = decide(
            facts, moment=self.later, drain_lead=group.drain_lead, target_size=group.wanted_size
        )
        return at_event, at_later

    def _size_group(
        self,
        group: GroupConfig,
        asgs: Mapping[str, AutoScalingGroupTypeDef] | None,
        observed: _Observed,
    ) -> GroupReport:
        rid = group.reservation
        decisions = self._decisions(group)
        if decisions is None and not (rid in self.missing and self.reservations_ok):
            # The reservations could not be read: nothing is known, so nothing is changed.
            return self._report(group, phase="unknown", action="error", detail="no reservation")
        if decisions is None:
            # Not found: treated as unusable, size 0 whatever the moment.
            at_event = at_later = None
            phase = Phase.UNUSABLE
        else:
            at_event, at_later = decisions
            phase = at_later.phase
            self.decisions[group.id] = at_later
        if group.kind is GroupKind.MANAGED:
            found = self._read_nodegroup(group, observed)
        else:
            found = self._read_asg(group, asgs, observed)
        if isinstance(found, GroupReport):
            return found
        current = observed.current
        assert current is not None
        if at_event is None or at_later is None:
            wanted = 0
        else:
            wanted = guarded_size(current=current, at_event=at_event, at_later=at_later)
        drain_at = format_time(at_later.drain_at) if at_later else None
        if group.kind is GroupKind.MANAGED:
            changed, detail = self._apply_managed(group, observed, wanted)
        else:
            # MaxSize 0 outside the running phase, so that nothing (a cluster autoscaler, a
            # person) scales the group up while it waits or drains.
            running_at_both = (
                at_event is not None
                and at_later is not None
                and at_event.phase is Phase.RUNNING
                and at_later.phase is Phase.RUNNING
            )
            wanted_max = group.max_size if (running_at_both or wanted > 0) else 0
            changed, detail = self._apply_self_managed(group, observed, wanted, wanted_max)
        if changed is None:
            # Skipped (node group busy): left for the next period.
            self.deferred.append(f"{group.id}: {detail}")
            return self._report(
                group,
                phase=phase.value,
                current=current,
                wanted=wanted,
                action="skipped",
                detail=detail,
                drain_at=drain_at,
            )
        if changed and wanted != current:
            self._announce_change(group, phase, current, wanted, at_later)
            memo = self.memory.group(group.id)
            memo.size = wanted
            memo.since = format_time(self.at) if wanted > 0 else None
            memo.alerted = False
        self._check_self_managed_running(group, observed)
        return self._report(
            group,
            phase=phase.value,
            current=current,
            wanted=wanted,
            action="scaled" if changed else "none",
            detail=detail,
            drain_at=drain_at,
        )

    def _read_nodegroup(self, group: GroupConfig, observed: _Observed) -> GroupReport | None:
        assert group.cluster_name is not None
        assert group.nodegroup_name is not None
        try:
            answer = self.clients.eks.describe_nodegroup(
                clusterName=group.cluster_name, nodegroupName=group.nodegroup_name
            )
        except Exception as exc:  # noqa: BLE001
            if error_code(exc) == "ResourceNotFoundException":
                return self._group_missing(group)
            return self._group_error(group, exc, "reading it (eks:DescribeNodegroup)")
        self._group_found(group)
        nodegroup = answer["nodegroup"]
        scaling = nodegroup.get("scalingConfig", {})
        observed.status = nodegroup.get("status")
        observed.current = int(scaling.get("desiredSize", 0))
        observed.max_size = int(scaling.get("maxSize", 0))
        observed.asg_names = tuple(
            item["name"]
            for item in nodegroup.get("resources", {}).get("autoScalingGroups", [])
            if "name" in item
        )
        return None

    def _read_asg(
        self,
        group: GroupConfig,
        asgs: Mapping[str, AutoScalingGroupTypeDef] | None,
        observed: _Observed,
    ) -> GroupReport | None:
        if asgs is None:
            assert self.asg_error is not None
            return self._group_error(
                group, self.asg_error, "reading it (autoscaling:DescribeAutoScalingGroups)"
            )
        assert group.auto_scaling_group_name is not None
        asg = asgs.get(group.auto_scaling_group_name)
        if asg is None:
            return self._group_missing(group)
        self._group_found(group)
        observed.current = int(asg["DesiredCapacity"])
        observed.max_size = int(asg["MaxSize"])
        observed.running = _in_service(asg)
        return None

    def _apply_managed(
        self, group: GroupConfig, observed: _Observed, wanted: int
    ) -> tuple[bool | None, str]:
        if observed.current == wanted:
            return False, ""
        if observed.status not in READY_NODEGROUP_STATUSES:
            return None, (
                f"node group is {observed.status}; EKS accepts a new size only when it is ACTIVE "
                "or DEGRADED, so the next period retries"
            )
        assert group.cluster_name is not None
        assert group.nodegroup_name is not None
        # EKS wants maxSize >= 1 and >= desiredSize; the group's own maximum is kept otherwise.
        max_size = max(observed.max_size or 0, wanted, 1)
        try:
            self.clients.eks.update_nodegroup_config(
                clusterName=group.cluster_name,
                nodegroupName=group.nodegroup_name,
                scalingConfig={"minSize": 0, "maxSize": max_size, "desiredSize": wanted},
            )
        except Exception as exc:
            if error_code(exc) == "ResourceInUseException":
                return None, (
                    "EKS is applying another update to the node group (ResourceInUseException); "
                    "the next period retries"
                )
            raise
        return True, f"desiredSize {observed.current} -> {wanted}"

    def _apply_self_managed(
        self, group: GroupConfig, observed: _Observed, wanted: int, wanted_max: int
    ) -> tuple[bool | None, str]:
        if observed.current == wanted and observed.max_size == wanted_max:
            return False, ""
        assert group.auto_scaling_group_name is not None
        self.clients.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=group.auto_scaling_group_name,
            MinSize=0,
            MaxSize=wanted_max,
            DesiredCapacity=wanted,
        )
        return True, (
            f"DesiredCapacity {observed.current} -> {wanted}, MaxSize {observed.max_size} -> "
            f"{wanted_max}"
        )

    def _report(self, group: GroupConfig, **values: Any) -> GroupReport:
        values.setdefault("current", None)
        values.setdefault("wanted", None)
        return GroupReport(
            id=group.id,
            kind=group.kind.value,
            reservation=group.reservation,
            resource=group.resource,
            **values,
        )

    def _group_error(self, group: GroupConfig, exc: BaseException, doing: str) -> GroupReport:
        text = describe_exception(exc)
        code = error_code(exc)
        hint = ""
        if code in ACCESS_DENIED_CODES:
            hint = "; grant the controller's role the action on this resource"
        elif code in THROTTLING_CODES:
            hint = "; the next period retries"
        self._error(f"{group.id} ({group.resource}): failed while {doing}: {text}{hint}")
        LOG.warning(
            json.dumps({"group": group.id, "error": text, "doing": doing}),
            exc_info=code is None,
        )
        return self._report(group, phase="unknown", action="error", detail=text)

    def _group_missing(self, group: GroupConfig) -> GroupReport:
        memo = self.memory.group(group.id)
        detail = f"{group.resource} does not exist"
        if not memo.missing and self.memory_ok:
            notice = Notice(
                kind="group-missing",
                reservation=group.reservation,
                group=group.id,
                subject=f"Capacity Block controller: {group.id} not found",
                message=(
                    f"The controller cannot size {group.id}: {detail}. It was deleted or "
                    "renamed outside the stack. Redeploy the stack to recreate it, or remove the "
                    f"group from the app. Reservation: {group.reservation}."
                ),
            )
            if self._publish(notice):
                memo.missing = True
        return self._report(group, phase="unknown", action="not-found", detail=detail)

    def _group_found(self, group: GroupConfig) -> None:
        if group.id in self.memory.groups:
            self.memory.groups[group.id].missing = False

    # -------------------------------------------------------------------- notifications

    def _announce_change(
        self,
        group: GroupConfig,
        phase: Phase,
        current: int,
        wanted: int,
        decision: Decision | None,
    ) -> None:
        rid = group.reservation
        facts = self.facts.get(rid)
        when = (
            f"Block {rid}: {format_time(facts.start)} to {format_time(facts.end)}, state "
            f"{facts.state}, {facts.instance_count} instances."
            if facts
            else f"Reservation {rid} was not found."
        )
        drain = f" It drains at {format_time(decision.drain_at)}." if decision else ""
        if wanted > current:
            kind, verb = "scaled-up", f"scaled up {current} -> {wanted}"
            why = f"The block is active.{drain}"
        elif wanted == 0 and phase is Phase.DRAINING:
            kind, verb = "drain", f"draining {current} -> 0"
            why = (
                f"The drain time {format_time(decision.drain_at) if decision else ''} has come: "
                "nodes are cordoned and drained so that jobs stop before EC2 reclaims the "
                "instances."
            )
        else:
            kind, verb = "scaled-down", f"scaled down {current} -> {wanted}"
            why = f"The group's phase is {phase.value}."
        self._publish(
            Notice(
                kind=kind,
                reservation=rid,
                group=group.id,
                subject=f"Capacity Block {rid}: {group.id} {verb}",
                message=(
                    f"The controller {verb.split(' ')[0]} {group.id} ({group.resource}) "
                    f"from {current} to {wanted} nodes at {format_time(self.at)}.\n{why}\n{when}"
                ),
            )
        )

    def _notify_interruption(self) -> None:
        inv = self.invocation
        self._publish(
            Notice(
                kind="interruption",
                subject=(
                    f"Capacity Block instance {inv.instance_id or 'unknown'} is reclaimed at "
                    f"{inv.termination_time or 'an unknown time'}"
                ),
                message=(
                    f"EC2 warns that instance {inv.instance_id or '(not named)'} in a Capacity "
                    f"Block will be terminated at {inv.termination_time or '(not given)'}. "
                    "Checkpoint or move its work now. Groups watched by this controller: "
                    f"{_names(self.config.groups)}."
                ),
            )
        )

    def _check_self_managed_running(self, group: GroupConfig, observed: _Observed) -> None:
        if group.kind is GroupKind.SELF_MANAGED and observed.running is not None:
            self._judge_running(group, observed.current, observed.running)

    def _check_managed_running(self, checks: list[tuple[GroupConfig, _Observed]]) -> None:
        """For managed groups whose "not reached" deadline has passed, count InService nodes
        of their Auto Scaling groups in one call."""
        due = [
            (group, observed)
            for group, observed in checks
            if self._not_reached_due(group, observed.current)
        ]
        if not due:
            return
        names = [name for _, observed in due for name in observed.asg_names]
        try:
            asgs = self._describe_asgs(names)
        except Exception as exc:  # noqa: BLE001 - only a notification depends on it
            self._warn(f"could not count the managed groups' nodes ({describe_exception(exc)})")
            return
        for group, observed in due:
            running = sum(_in_service(asgs[name]) for name in observed.asg_names if name in asgs)
            self._judge_running(group, observed.current, running)

    def _not_reached_due(self, group: GroupConfig, current: int | None) -> bool:
        memo = self.memory.groups.get(group.id)
        if memo is None or not memo.size or memo.since is None or memo.alerted:
            return False
        if current != memo.size:
            # Someone (or a later decision) changed the size: this setting no longer holds.
            return False
        since = _parse(memo.since)
        return since is not None and self.at - since >= self._not_reached_after

    @property
    def _not_reached_after(self) -> timedelta:
        return max(NOT_REACHED_PERIODS * self.config.period, NOT_REACHED_FLOOR)

    def _judge_running(self, group: GroupConfig, current: int | None, running: int) -> None:
        memo = self.memory.groups.get(group.id)
        if memo is None or not memo.size or memo.since is None or memo.alerted:
            return
        if running >= memo.size:
            memo.since = None
            return
        if not self._not_reached_due(group, current) or not self.memory_ok:
            return
        minutes = int((self.at - (_parse(memo.since) or self.at)).total_seconds() // 60)
        notice = Notice(
            kind="not-reached",
            reservation=group.reservation,
            group=group.id,
            subject=(
                f"Capacity Block {group.reservation}: {group.id} has {running} of {memo.size} nodes"
            ),
            message=(
                f"The controller set {group.id} ({group.resource}) to {memo.size} nodes at "
                f"{memo.since}; {minutes} minutes later only {running} are InService. Check the "
                "Auto Scaling group's activity history (launch failures such as "
                "InsufficientInstanceCapacity or a launch template that does not target the "
                f"reservation) and that the reservation {group.reservation} is active with free "
                "capacity."
            ),
        )
        if self._publish(notice):
            memo.alerted = True

    def _check_eks_actions(self, checks: list[tuple[GroupConfig, _Observed]]) -> None:
        """After an end moved, warn when EKS's own scale-down action still aims at the old end.

        EKS adds the action when the node group is created; whether it moves it after an
        extension is not documented. The controller never edits it (AWS asks not to).
        """
        for group, observed in checks:
            facts = self.facts.get(group.reservation)
            memo = self.memory.reservations.get(group.reservation)
            if facts is None or memo is None or not memo.moved or not self.memory_ok:
                continue
            end = format_time(facts.end)
            gmemo = self.memory.group(group.id)
            if gmemo.eks_checked == end:
                continue
            expected = facts.end - EKS_MANAGED_SCALE_DOWN_LEAD
            stale: list[tuple[str, datetime]] = []
            try:
                for name in observed.asg_names:
                    for action in self._scheduled_actions(name):
                        start = action.get("StartTime")
                        title = action.get("ScheduledActionName", "")
                        if (
                            start is not None
                            and EKS_ACTION_MARKER in title.lower()
                            and start < expected - EKS_ACTION_TOLERANCE
                        ):
                            stale.append((name, start))
            except Exception as exc:  # noqa: BLE001 - only a notification depends on it
                self._warn(
                    f"could not read {group.id}'s scheduled actions ({describe_exception(exc)}); "
                    "the next period retries"
                )
                continue
            if stale:
                asg, start = stale[0]
                notice = Notice(
                    kind="eks-action",
                    reservation=group.reservation,
                    group=group.id,
                    subject=(
                        f"Capacity Block {group.reservation}: EKS scale-down of {group.id} is "
                        "before the new end"
                    ),
                    message=(
                        f"The end of {group.reservation} moved to {end}, but EKS's own scheduled "
                        f"action on {asg} ({group.resource}) still scales it to zero at "
                        f"{format_time(start)}, before {format_time(expected)} (new end - 40 "
                        "min). When it fires, the nodes are drained early; the controller "
                        "scales the group back up at its next run. The controller does not edit "
                        "EKS's action (AWS asks not to); to avoid the early drain, recreate the "
                        "node group after the extension."
                    ),
                )
                if not self._publish(notice):
                    continue
            gmemo.eks_checked = end

    def _scheduled_actions(self, asg_name: str) -> Iterable[Mapping[str, Any]]:
        token: str | None = None
        while True:
            if token:
                answer = self.clients.autoscaling.describe_scheduled_actions(
                    AutoScalingGroupName=asg_name, NextToken=token
                )
            else:
                answer = self.clients.autoscaling.describe_scheduled_actions(
                    AutoScalingGroupName=asg_name
                )
            yield from answer.get("ScheduledUpdateGroupActions", [])
            token = answer.get("NextToken")
            if not token:
                return

    def _reminders(self) -> None:
        """One reminder per offset, sent by the periodic run whose moment is the first at or
        after ``end - offset``: the window (moment - period, moment] tiles the timeline."""
        if self.invocation.trigger is not Trigger.SCHEDULE or not self.config.reminders:
            return
        for rid in self.config.reservation_ids:
            facts = self.facts.get(rid)
            if facts is None or facts.state not in REMINDER_STATES:
                continue
            memo = self.memory.reservation(rid)
            waiting = [
                group
                for group in self._groups_on(rid)
                if (decision := self.decisions.get(group.id)) is not None
                and decision.phase in (Phase.WAITING, Phase.RUNNING)
            ]
            if not waiting:
                continue
            for offset in self.config.reminders:
                due = facts.end - offset
                seconds = int(offset.total_seconds())
                if not self.at - self.config.period < due <= self.at:
                    continue
                if seconds in memo.reminded:
                    continue
                drains = "\n".join(
                    f"  - {group.id} ({group.resource}) drains at "
                    f"{format_time(facts.end - group.drain_lead)}"
                    for group in waiting
                )
                notice = Notice(
                    kind="reminder",
                    reservation=rid,
                    subject=f"Capacity Block {rid} ends in {_span(offset)} ({_human(facts.end)})",
                    message=(
                        f"Capacity Block {rid} ends at {format_time(facts.end)}, in "
                        f"{_span(offset)}. Its groups scale to zero before that:\n{drains}\n"
                        "Checkpoint long jobs before the drain, or extend the block (an "
                        "extension keeps the reservation ID; the controller follows the new end)."
                    ),
                )
                if self._publish(notice):
                    memo.reminded.append(seconds)

    def _publish(self, notice: Notice) -> bool:
        subject = _subject(notice.subject)
        try:
            self.clients.sns.publish(
                TopicArn=self.config.topic_arn, Subject=subject, Message=notice.message
            )
        except Exception as exc:  # noqa: BLE001 - other groups and notices go on
            self._error(
                f"could not publish '{subject}' to {self.config.topic_arn} "
                f"({describe_exception(exc)}); grant sns:Publish (and kms:GenerateDataKey and "
                "kms:Decrypt on an encrypted topic's key)"
            )
            return False
        self.notices.append(notice)
        LOG.info(json.dumps({"notification": notice.kind, "subject": subject}))
        return True

    def _error(self, text: str) -> None:
        self.errors.append(text)
        LOG.error(text)

    def _warn(self, text: str) -> None:
        self.warnings.append(text)
        LOG.warning(text)


def _bad_state_notice(rid: str, state: str, names: str, facts: ReservationFacts | None) -> Notice:
    if state == NOT_FOUND_STATE:
        return Notice(
            kind="bad-state",
            reservation=rid,
            subject=f"Capacity Block {rid} not found: groups held at 0",
            message=(
                f"DescribeCapacityReservations does not return {rid}. The groups on it ({names}) "
                "are held at 0 nodes. Check the reservation ID and the account and region of the "
                "stack; a block that ended long ago is no longer listed."
            ),
        )
    if state == "expired":
        return Notice(
            kind="bad-state",
            reservation=rid,
            subject=f"Capacity Block {rid} has expired",
            message=(
                f"Capacity Block {rid} has expired"
                + (f" (it ended at {format_time(facts.end)})" if facts else "")
                + f". Its groups ({names}) stay at 0 nodes. Point them at a new block, or remove "
                "them from the app."
            ),
        )
    return Notice(
        kind="bad-state",
        reservation=rid,
        subject=f"Capacity Block {rid} is {state}: groups held at 0",
        message=(
            f"Capacity Block {rid} is {state}; it will not become usable. Its groups ({names}) "
            "are held at 0 nodes. "
            + (
                "The upfront payment failed, so EC2 released the block; buy a new one."
                if state == "payment-failed"
                else "Buy a new block and point the groups at it."
            )
        ),
    )


def _log_group(report: GroupReport) -> None:
    LOG.info(json.dumps(report.to_dict(), separators=(",", ":")))


def _in_service(asg: Mapping[str, Any]) -> int:
    return sum(
        1 for instance in asg.get("Instances", []) if instance.get("LifecycleState") == "InService"
    )


def _names(groups: Iterable[GroupConfig]) -> str:
    return ", ".join(f"{group.id} ({group.resource})" for group in groups) or "none"


def _human(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _span(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _subject(text: str) -> str:
    """An SNS subject: ASCII, no line breaks or control characters, at most 100 characters."""
    clean = "".join(
        char if " " <= char <= "~" else "?" for char in text.encode("ascii", "replace").decode()
    )
    return clean if len(clean) <= SUBJECT_LIMIT else clean[: SUBJECT_LIMIT - 3] + "..."


def _parse(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else None


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(
            f"{what} gave the naive datetime {moment.isoformat()}; pass a timezone-aware one "
            "such as datetime.now(timezone.utc)"
        )
    return moment.astimezone(timezone.utc)
