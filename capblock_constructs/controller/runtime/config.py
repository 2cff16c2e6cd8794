"""The controller's configuration: the JSON the stack puts in ``CAPBLOCK_CONTROLLER_CONFIG``.

The construct writes it at synth time; this module reads it back at run time and
checks every field, so a malformed configuration fails with one error that lists
every problem instead of a ``KeyError`` in the middle of a run.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .phase import (
    MAX_CONTROLLER_PERIOD,
    MIN_CONTROLLER_PERIOD,
    GroupKind,
    earliest_drain_lead,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "CONFIG_VERSION",
    "ConfigError",
    "ControllerConfig",
    "GroupConfig",
    "parse_config",
]

CONFIG_ENV_VAR = "CAPBLOCK_CONTROLLER_CONFIG"
"""The environment variable that holds the configuration JSON."""

CONFIG_VERSION = 1
"""The only configuration format this runtime reads."""

_RESERVATION_ID = re.compile(r"^cr-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
# SSM parameter names: letters, digits and . - _ / ; at most 1011 characters for the name part.
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,2048}$")
# Lambda environment variables hold 4 KB in all; reminders beyond a block's longest length
# (182 days) can never fire.
_MAX_REMINDER = timedelta(days=182)


class ConfigError(ValueError):
    """The configuration cannot drive the controller; the message lists every problem.

    :param problems: One sentence per problem, each naming the offending value and the fix.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        lines = [
            f"{CONFIG_ENV_VAR} has {len(self.problems)} "
            f"problem{'s' if len(self.problems) != 1 else ''}:"
        ]
        lines.extend(f"  - {problem}" for problem in self.problems)
        lines.append(
            "  The stack writes this configuration; redeploy it from the construct instead of "
            "editing the function's environment by hand."
        )
        super().__init__("\n".join(lines))


@dataclass(frozen=True, kw_only=True)
class GroupConfig:
    """One node group the controller sizes."""

    id: str
    """The construct path, for example ``Stack/GpuNodes``; it names the group in messages."""
    kind: GroupKind
    reservation: str
    """The Capacity Block's ``cr-`` ID."""
    ultraserver: bool
    target_size: int
    """The size wanted while the block is active; capped by ``max_size`` and the live count."""
    max_size: int
    drain_lead: timedelta
    """How long before the block's end the group is scaled to zero."""
    cluster_name: str | None = None
    """Managed groups only: the EKS cluster."""
    nodegroup_name: str | None = None
    """Managed groups only: the EKS node group."""
    auto_scaling_group_name: str | None = None
    """Self-managed groups only: the Auto Scaling group."""

    @property
    def wanted_size(self) -> int:
        """The size while running: the target, never above the group's maximum."""
        return min(self.target_size, self.max_size)

    @property
    def resource(self) -> str:
        """The AWS resource the group is, as people name it: ``cluster/nodegroup`` or the ASG."""
        if self.kind is GroupKind.MANAGED:
            return f"EKS node group {self.cluster_name}/{self.nodegroup_name}"
        return f"Auto Scaling group {self.auto_scaling_group_name}"


@dataclass(frozen=True, kw_only=True)
class ControllerConfig:
    """The whole configuration."""

    period: timedelta
    """How often the schedule invokes the controller."""
    reminders: tuple[timedelta, ...]
    """Notify this long before each block's end; may be empty."""
    topic_arn: str
    state_parameter: str
    """The SSM String parameter that holds the notification memory."""
    groups: tuple[GroupConfig, ...]

    @property
    def reservation_ids(self) -> tuple[str, ...]:
        """Every configured reservation once, in the order the groups name them."""
        return tuple(dict.fromkeys(group.reservation for group in self.groups))


def parse_config(raw: str | Mapping[str, Any] | None) -> ControllerConfig:
    """Read and check the configuration JSON (or its already-decoded object).

    :raises ConfigError: listing every problem found, when anything is missing or malformed.
    """
    if raw is None:
        raise ConfigError(
            [
                f"the environment variable {CONFIG_ENV_VAR} is not set; the function cannot know "
                "which groups to size"
            ]
        )
    if isinstance(raw, str):
        try:
            decoded: object = json.loads(raw)
        except ValueError as exc:
            raise ConfigError([f"it is not valid JSON ({exc})"]) from None
    else:
        decoded = raw
    if not isinstance(decoded, Mapping):
        raise ConfigError([f"it is a JSON {type(decoded).__name__}, not an object"])
    return _Parser(decoded).parse()


class _Kind(enum.Enum):
    INT = "an integer"
    STR = "a non-empty string"
    BOOL = "true or false"
    LIST = "a list"


class _Parser:
    """Collects every problem in one pass instead of stopping at the first."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.problems: list[str] = []

    def parse(self) -> ControllerConfig:
        root = self.root
        version = self._get(root, "version", _Kind.INT, "")
        if version is not None and version != CONFIG_VERSION:
            self.problems.append(
                f"version is {version!r}; this function reads version {CONFIG_VERSION}. Deploy "
                "the function and its configuration from the same capblock-constructs release"
            )
        period = self._period()
        reminders = self._reminders()
        topic = self._get(root, "topicArn", _Kind.STR, "")
        if topic is not None and not _TOPIC_ARN.match(topic):
            self.problems.append(
                f"topicArn {topic!r} is not an SNS topic ARN; use one like "
                "'arn:aws:sns:us-east-2:123456789012:topic'"
            )
        parameter = self._get(root, "stateParameter", _Kind.STR, "")
        if parameter is not None and not _PARAMETER_NAME.match(parameter):
            self.problems.append(
                f"stateParameter {parameter!r} is not an SSM parameter name; use a name like "
                "'/capblock-constructs/Stack/CapacityBlockController/state' (not an ARN)"
            )
        groups = self._groups(period)
        if self.problems:
            raise ConfigError(self.problems)
        # Every value below was checked above; the asserts narrow the types for mypy.
        assert period is not None
        assert topic is not None
        assert parameter is not None
        return ControllerConfig(
            period=period,
            reminders=reminders,
            topic_arn=topic,
            state_parameter=parameter,
            groups=tuple(groups),
        )

    def _get(self, obj: Mapping[str, Any], key: str, kind: _Kind, where: str) -> Any:
        """The value of ``key`` if present and of the right type; else record why and None."""
        label = f"{where}{key}"
        if key not in obj:
            self.problems.append(f"{label} is missing; it must be {kind.value}")
            return None
        value = obj[key]
        ok = {
            # bool is an int in Python; true/false are never a size or a number of seconds.
            _Kind.INT: isinstance(value, int) and not isinstance(value, bool),
            _Kind.STR: isinstance(value, str) and value.strip() != "",
            _Kind.BOOL: isinstance(value, bool),
            _Kind.LIST: isinstance(value, list),
        }[kind]
        if not ok:
            self.problems.append(f"{label} is {json.dumps(value)}; it must be {kind.value}")
            return None
        return value

    def _period(self) -> timedelta | None:
        seconds = self._get(self.root, "periodSeconds", _Kind.INT, "")
        if seconds is None:
            return None
        low = int(MIN_CONTROLLER_PERIOD.total_seconds())
        high = int(MAX_CONTROLLER_PERIOD.total_seconds())
        if not low <= seconds <= high:
            self.problems.append(
                f"periodSeconds is {seconds}; use {low} to {high} (EventBridge schedules fire at "
                "most once a minute, and a longer period eats into the drain)"
            )
            return None
        return timedelta(seconds=seconds)

    def _reminders(self) -> tuple[timedelta, ...]:
        values = self._get(self.root, "reminderSeconds", _Kind.LIST, "")
        if values is None:
            return ()
        reminders: list[timedelta] = []
        for index, value in enumerate(values):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 0 < value <= _MAX_REMINDER.total_seconds()
            ):
                self.problems.append(
                    f"reminderSeconds[{index}] is {json.dumps(value)}; use a whole number of "
                    f"seconds from 1 to {int(_MAX_REMINDER.total_seconds())}"
                )
            elif timedelta(seconds=value) in reminders:
                self.problems.append(
                    f"reminderSeconds[{index}] repeats {value}; list each reminder once"
                )
            else:
                reminders.append(timedelta(seconds=value))
        return tuple(reminders)

    def _groups(self, period: timedelta | None) -> list[GroupConfig]:
        values = self._get(self.root, "groups", _Kind.LIST, "")
        if values is None:
            return []
        groups: list[GroupConfig] = []
        seen_ids: set[str] = set()
        seen_targets: dict[str, str] = {}
        for index, value in enumerate(values):
            group = self._group(index, value, period)
            if group is None:
                continue
            if group.id in seen_ids:
                self.problems.append(
                    f"groups[{index}].id {group.id!r} is used twice; each group is listed once"
                )
                continue
            seen_ids.add(group.id)
            target = group.resource
            if target in seen_targets:
                self.problems.append(
                    f"groups[{index}] ({group.id}) sizes the same {target} as "
                    f"{seen_targets[target]}; two groups would fight over its size"
                )
                continue
            seen_targets[target] = group.id
            groups.append(group)
        return groups

    def _group(self, index: int, value: object, period: timedelta | None) -> GroupConfig | None:
        where = f"groups[{index}]."
        if not isinstance(value, Mapping):
            self.problems.append(f"groups[{index}] is {json.dumps(value)}; it must be an object")
            return None
        before = len(self.problems)
        group_id = self._get(value, "id", _Kind.STR, where)
        if group_id is not None:
            where = f"groups[{index}] ({group_id}): "
        kind_text = self._get(value, "kind", _Kind.STR, where)
        kind: GroupKind | None = None
        if kind_text is not None:
            try:
                kind = GroupKind(kind_text)
            except ValueError:
                self.problems.append(
                    f"{where}kind is {kind_text!r}; use 'managed' or 'self-managed'"
                )
        reservation = self._get(value, "reservation", _Kind.STR, where)
        if reservation is not None and not _RESERVATION_ID.match(reservation):
            self.problems.append(
                f"{where}reservation {reservation!r} is not a reservation ID; use the 'cr-' ID "
                "followed by 8 or 17 lowercase hex digits, for example 'cr-0123456789abcdef0'"
            )
        ultraserver = self._get(value, "ultraserver", _Kind.BOOL, where)
        target = self._get(value, "targetSize", _Kind.INT, where)
        maximum = self._get(value, "maxSize", _Kind.INT, where)
        for key, number in (("targetSize", target), ("maxSize", maximum)):
            if number is not None and not 0 <= number <= 1000:
                self.problems.append(f"{where}{key} is {number}; use 0 to 1000")
        lead_seconds = self._get(value, "drainLeadSeconds", _Kind.INT, where)
        names: dict[str, str | None] = {}
        if kind is GroupKind.MANAGED:
            names["cluster_name"] = self._get(value, "clusterName", _Kind.STR, where)
            names["nodegroup_name"] = self._get(value, "nodegroupName", _Kind.STR, where)
        elif kind is GroupKind.SELF_MANAGED:
            names["auto_scaling_group_name"] = self._get(
                value, "autoScalingGroupName", _Kind.STR, where
            )
        if (
            lead_seconds is not None
            and kind is not None
            and isinstance(ultraserver, bool)
            and period is not None
        ):
            floor = earliest_drain_lead(kind=kind, ultraserver=ultraserver, period=period)
            if timedelta(seconds=lead_seconds) < floor:
                self.problems.append(
                    f"{where}drainLeadSeconds is {lead_seconds}; a {kind.value} group on "
                    f"{'an UltraServer' if ultraserver else 'an instance'} block with a "
                    f"{int(period.total_seconds())} s period needs at least "
                    f"{int(floor.total_seconds())} s, or EC2 reclaims nodes before they drain"
                )
        if len(self.problems) > before:
            return None
        assert kind is not None
        return GroupConfig(
            id=group_id,
            kind=kind,
            reservation=reservation,
            ultraserver=ultraserver,
            target_size=target,
            max_size=maximum,
            drain_lead=timedelta(seconds=lead_seconds),
            **names,
        )
