"""A parsed template as the rules see it: resources, intrinsic functions followed, groups linked.

The rules must stay silent when a value is not known before deployment, so
resolution returns :data:`UNKNOWN` for anything that depends on the deployment
(a parameter without a default, a pseudo parameter, an import, a condition) and
a :class:`Reference` for a resource's ``Ref`` or attribute. What resolves
inside the template is followed: parameter defaults, ``Fn::Sub``, ``Fn::Join``,
``Fn::Select``, ``Fn::FindInMap`` with literal keys.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .._time import parse_utc
from ..capacity_block import CapacityBlock
from ..errors import CapacityBlockError

LAUNCH_TEMPLATE = "AWS::EC2::LaunchTemplate"
NODE_GROUP = "AWS::EKS::Nodegroup"
AUTO_SCALING_GROUP = "AWS::AutoScaling::AutoScalingGroup"
SCHEDULED_ACTION = "AWS::AutoScaling::ScheduledAction"
LIFECYCLE_HOOK = "AWS::AutoScaling::LifecycleHook"
WARM_POOL = "AWS::AutoScaling::WarmPool"
SUBNET = "AWS::EC2::Subnet"
PLACEMENT_GROUP = "AWS::EC2::PlacementGroup"
CAPACITY_RESERVATION = "AWS::EC2::CapacityReservation"
CONTROLLER = "Custom::CapacityBlockController"

CAPACITY_BLOCK_MARKET = "capacity-block"
"""``InstanceMarketOptions.MarketType`` for instances in a Capacity Block."""
CAPACITY_BLOCK_NODE_GROUP = "CAPACITY_BLOCK"
"""``CapacityType`` of an EKS managed node group on a Capacity Block."""
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
"""``LifecycleTransition`` of a termination lifecycle hook."""
FLOATING_VERSIONS = ("$Latest", "$Default")
"""Launch template versions that move when someone creates or promotes a version."""


class _Unknown(enum.Enum):
    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown.UNKNOWN
"""A value only known at deployment: a parameter without a default, a pseudo parameter, ..."""


@dataclass(frozen=True)
class Reference:
    """``Ref`` to a resource of the template (``attribute`` None) or one of its attributes."""

    logical_id: str
    attribute: str | None = None


# -- resolution -------------------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Parameter types whose value CloudFormation fetches at deployment, whatever the default says.
_DEPLOY_TIME_PARAMETER = re.compile(r"^AWS::SSM::Parameter::Value<")


class Template:
    """One parsed template with lookups the rules share; built once per check."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        resources = body.get("Resources")
        self.resources: dict[str, dict[str, Any]] = {
            str(logical_id): resource
            for logical_id, resource in (resources.items() if isinstance(resources, dict) else ())
            if isinstance(resource, dict)
        }
        parameters = body.get("Parameters")
        self.parameters: dict[str, Any] = parameters if isinstance(parameters, dict) else {}
        mappings = body.get("Mappings")
        self.mappings: dict[str, Any] = mappings if isinstance(mappings, dict) else {}

    # resources --------------------------------------------------------------------------------

    def of_type(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(logical ID, properties)`` of every resource of a type, in logical-ID order."""
        for logical_id in sorted(self.resources):
            resource = self.resources[logical_id]
            if resource.get("Type") == resource_type:
                properties = resource.get("Properties")
                yield logical_id, properties if isinstance(properties, dict) else {}

    def type_of(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        kind = resource.get("Type") if resource else None
        return kind if isinstance(kind, str) else None

    def properties(self, logical_id: str) -> dict[str, Any]:
        resource = self.resources.get(logical_id, {})
        properties = resource.get("Properties")
        return properties if isinstance(properties, dict) else {}

    # intrinsic functions ----------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """The value with intrinsic functions followed as far as the template allows.

        Returns ``None`` for a missing value or ``AWS::NoValue``, a plain value
        (str, int, float, bool, list, dict; containers are not resolved inside),
        a :class:`Reference` to a resource, or :data:`UNKNOWN`.
        """
        if not isinstance(value, dict) or len(value) != 1:
            return value
        ((name, argument),) = value.items()
        if name == "Ref":
            return self._ref(argument)
        if name == "Fn::GetAtt":
            return self._get_att(argument)
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Join":
            return self._join(argument)
        if name == "Fn::Select":
            return self._select(argument)
        if name == "Fn::FindInMap":
            return self._find_in_map(argument)
        if isinstance(name, str) and (name.startswith("Fn::") or name == "Condition"):
            # Fn::If, Fn::ImportValue, Fn::GetAZs, ...: only the deployment decides.
            return UNKNOWN
        return value

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            return UNKNOWN
        if name == "AWS::NoValue":
            return None
        if name in self.resources:
            return Reference(name)
        parameter = self.parameters.get(name)
        if isinstance(parameter, dict) and "Default" in parameter:
            kind = str(parameter.get("Type", "String"))
            if _DEPLOY_TIME_PARAMETER.match(kind):
                return UNKNOWN
            default = parameter["Default"]
            if kind.startswith(("List<", "CommaDelimitedList")) and isinstance(default, str):
                return [item.strip() for item in default.split(",")]
            return default
        return UNKNOWN

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if (
            isinstance(argument, list)
            and len(argument) == 2
            and isinstance(argument[0], str)
            and argument[0] in self.resources
        ):
            attribute = self.resolve(argument[1])
            if isinstance(attribute, str):
                return Reference(argument[0], attribute)
        return UNKNOWN

    def _sub(self, argument: Any) -> Any:
        variables: dict[str, Any] = {}
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            argument, variables = argument[0], argument[1]
        if not isinstance(argument, str):
            return UNKNOWN
        parts: list[Any] = []
        position = 0
        for match in _SUB_VARIABLE.finditer(argument):
            parts.append(argument[position : match.start()])
            position = match.end()
            name = match.group(1)
            if name.startswith("!"):
                # ${!Literal} writes ${Literal}.
                parts.append("${" + name[1:] + "}")
            elif name in variables:
                parts.append(self.resolve(variables[name]))
            elif "." in name:
                parts.append(self._get_att(name))
            else:
                parts.append(self._ref(name))
        parts.append(argument[position:])
        return _concatenate(parts)

    def _join(self, argument: Any) -> Any:
        if not isinstance(argument, list) or len(argument) != 2:
            return UNKNOWN
        delimiter, items = self.resolve(argument[0]), self.resolve(argument[1])
        if not isinstance(delimiter, str) or not isinstance(items, list):
            return UNKNOWN
        parts: list[Any] = []
        for index, item in enumerate(items):
            if index:
                parts.append(delimiter)
            parts.append(self.resolve(item))
        return _concatenate(parts)

    def _select(self, argument: Any) -> Any:
        if not isinstance(argument, list) or len(argument) != 2:
            return UNKNOWN
        index, items = self.resolve(argument[0]), self.resolve(argument[1])
        try:
            position = int(index)
        except (TypeError, ValueError):
            return UNKNOWN
        if not isinstance(items, list) or not 0 <= position < len(items):
            return UNKNOWN
        return self.resolve(items[position])

    def _find_in_map(self, argument: Any) -> Any:
        if not isinstance(argument, list) or len(argument) != 3:
            return UNKNOWN
        keys = [self.resolve(item) for item in argument]
        if not all(isinstance(key, str) for key in keys):
            return UNKNOWN
        found: Any = self.mappings
        for key in keys:
            if not isinstance(found, dict) or key not in found:
                return UNKNOWN
            found = found[key]
        return self.resolve(found)

    # typed views ------------------------------------------------------------------------------

    def at(self, value: Any, *keys: str | int) -> Any:
        """Follow ``keys`` into nested mappings and lists, resolving at each step."""
        current = self.resolve(value)
        for key in keys:
            if current is UNKNOWN or isinstance(current, Reference):
                # Inside a value only the deployment knows, every part is unknown too.
                return UNKNOWN
            if isinstance(key, int):
                current = current[key] if isinstance(current, list) and key < len(current) else None
            else:
                current = current.get(key) if isinstance(current, dict) else None
            current = self.resolve(current)
        return current

    def text(self, value: Any, *keys: str | int) -> str | _Unknown | None:
        """A string value (numbers as text); None when absent, UNKNOWN when not known here."""
        found = self.at(value, *keys)
        if found is None or isinstance(found, str):
            return found
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return str(found)
        return UNKNOWN

    def integer(self, value: Any, *keys: str | int) -> int | _Unknown | None:
        """An integer value (CloudFormation also takes "4"); None when absent, else UNKNOWN."""
        found = self.at(value, *keys)
        if found is None:
            return None
        if isinstance(found, bool):
            return UNKNOWN
        if isinstance(found, int):
            return found
        if isinstance(found, str) and found.strip().lstrip("-").isdigit():
            return int(found.strip())
        return UNKNOWN

    def items(self, value: Any, *keys: str | int) -> list[Any] | _Unknown | None:
        """A list value (its items unresolved); None when absent, UNKNOWN when not a list."""
        found = self.at(value, *keys)
        if found is None or isinstance(found, list):
            return found
        return UNKNOWN


def _concatenate(parts: list[Any]) -> Any:
    """Joined text, or the one reference that makes up the whole string, or UNKNOWN."""
    meaningful = [part for part in parts if part != ""]
    if len(meaningful) == 1 and isinstance(meaningful[0], Reference):
        return meaningful[0]
    text: list[str] = []
    for part in meaningful:
        if isinstance(part, bool) or not isinstance(part, (str, int, float)):
            return UNKNOWN
        text.append(str(part))
    return "".join(text)


# -- launch templates -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LaunchTemplate:
    """What the rules need from one ``AWS::EC2::LaunchTemplate``."""

    logical_id: str
    data: dict[str, Any]
    market_type: str | _Unknown | None
    reservation_ref: Reference | None
    """The resource the reservation ID refers to, when it is a Ref inside the template."""
    instance_type: str | _Unknown | None
    block: CapacityBlock | None
    """The cached Capacity Block the launch template targets, when the context has it."""

    @property
    def uses_capacity_block(self) -> bool:
        """Whether instances from it launch into a Capacity Block: the market type says so,
        or it targets a reservation the context knows as a Capacity Block."""
        return self.market_type == CAPACITY_BLOCK_MARKET or self.block is not None

    @property
    def wrong_market_type(self) -> str | None:
        """What is wrong with its market type for a Capacity Block (``has no
        InstanceMarketOptions.MarketType`` or ``has InstanceMarketOptions.MarketType 'spot'``);
        None when it is ``capacity-block`` or not known here."""
        market = self.market_type
        if market is None:
            return "has no InstanceMarketOptions.MarketType"
        if isinstance(market, str) and market != CAPACITY_BLOCK_MARKET:
            return f"has InstanceMarketOptions.MarketType {market!r}"
        return None


def launch_template(
    template: Template, logical_id: str, blocks: Mapping[str, CapacityBlock]
) -> LaunchTemplate | None:
    """The launch template with this logical ID, or None if it is not one."""
    if template.type_of(logical_id) != LAUNCH_TEMPLATE:
        return None
    data = template.at(template.properties(logical_id), "LaunchTemplateData")
    if not isinstance(data, dict):
        data = {}
    reservation = template.at(data, "CapacityReservationSpecification", "CapacityReservationTarget")
    raw_id = template.at(reservation, "CapacityReservationId") if reservation else None
    reservation_ref = raw_id if isinstance(raw_id, Reference) else None
    block = blocks.get(raw_id) if isinstance(raw_id, str) else None
    return LaunchTemplate(
        logical_id=logical_id,
        data=data,
        market_type=template.text(data, "InstanceMarketOptions", "MarketType"),
        reservation_ref=reservation_ref,
        instance_type=template.text(data, "InstanceType"),
        block=block,
    )


def launch_templates(
    template: Template, blocks: Mapping[str, CapacityBlock]
) -> dict[str, LaunchTemplate]:
    """Every launch template of the template, by logical ID."""
    found = {}
    for logical_id, _ in template.of_type(LAUNCH_TEMPLATE):
        parsed = launch_template(template, logical_id, blocks)
        if parsed is not None:
            found[logical_id] = parsed
    return found


def launch_template_of(
    template: Template, specification: Any, *, id_key: str, name_key: str
) -> str | None:
    """The logical ID of the launch template a group's specification names, if in the template.

    ``specification`` is an Auto Scaling group's ``LaunchTemplate`` (keys
    ``LaunchTemplateId`` / ``LaunchTemplateName``) or a node group's (``Id`` / ``Name``).
    """
    if not isinstance(template.resolve(specification), dict):
        return None
    by_id = template.at(specification, id_key)
    if isinstance(by_id, Reference) and template.type_of(by_id.logical_id) == LAUNCH_TEMPLATE:
        if by_id.attribute in (None, "LaunchTemplateId"):
            return by_id.logical_id
        return None
    by_name = template.at(specification, name_key)
    if isinstance(by_name, Reference) and template.type_of(by_name.logical_id) == LAUNCH_TEMPLATE:
        return by_name.logical_id
    if isinstance(by_name, str):
        for logical_id, properties in template.of_type(LAUNCH_TEMPLATE):
            if template.text(properties, "LaunchTemplateName") == by_name:
                return logical_id
    return None


# -- groups -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AutoScalingGroup:
    """An ``AWS::AutoScaling::AutoScalingGroup`` and the launch template it launches from."""

    logical_id: str
    properties: dict[str, Any]
    launch_template: LaunchTemplate | None
    launch_template_path: tuple[str, ...]
    """Where the launch template specification sits in the group's properties."""

    @property
    def uses_capacity_block(self) -> bool:
        return self.launch_template is not None and self.launch_template.uses_capacity_block

    @property
    def block(self) -> CapacityBlock | None:
        return self.launch_template.block if self.launch_template else None


def auto_scaling_groups(
    template: Template, templates: Mapping[str, LaunchTemplate]
) -> dict[str, AutoScalingGroup]:
    """Every Auto Scaling group, linked to its launch template when that is in the template."""
    found = {}
    for logical_id, properties in template.of_type(AUTO_SCALING_GROUP):
        path: tuple[str, ...] = ("LaunchTemplate",)
        specification = properties.get("LaunchTemplate")
        if specification is None:
            path = ("MixedInstancesPolicy", "LaunchTemplate", "LaunchTemplateSpecification")
            specification = template.at(properties, *path)
        target = launch_template_of(
            template, specification, id_key="LaunchTemplateId", name_key="LaunchTemplateName"
        )
        found[logical_id] = AutoScalingGroup(
            logical_id=logical_id,
            properties=properties,
            launch_template=templates.get(target) if target else None,
            launch_template_path=path,
        )
    return found


def group_of(template: Template, value: Any, groups: Mapping[str, AutoScalingGroup]) -> str | None:
    """The logical ID of the Auto Scaling group an ``AutoScalingGroupName`` names, if known."""
    name = template.resolve(value)
    if isinstance(name, Reference) and name.attribute is None and name.logical_id in groups:
        return name.logical_id
    if isinstance(name, str):
        for logical_id, group in groups.items():
            if template.text(group.properties, "AutoScalingGroupName") == name:
                return logical_id
    return None


# -- scheduled actions -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScheduledAction:
    """One ``AWS::AutoScaling::ScheduledAction`` of a group in the template."""

    logical_id: str
    group: str | None
    """The group's logical ID; None when the action names a group not known here."""
    start: datetime | Any
    """``StartTime`` in UTC; None when absent, UNKNOWN when not known before deployment."""
    recurring: bool | None
    """Whether it has a ``Recurrence``; None when that is not known here."""
    desired: int | Any
    maximum: int | Any

    @property
    def scales_to_zero(self) -> bool | None:
        """Whether the action leaves the group empty; None when its sizes are not known here."""
        if self.desired == 0 or self.maximum == 0:
            return True
        if self.desired is UNKNOWN or self.maximum is UNKNOWN:
            return None
        return False

    @property
    def one_time_start(self) -> datetime | None:
        """When a one-time action runs; None for recurring actions or an unknown time."""
        if self.recurring is False and isinstance(self.start, datetime):
            return self.start
        return None


def scheduled_actions(
    template: Template, groups: Mapping[str, AutoScalingGroup]
) -> tuple[ScheduledAction, ...]:
    """Every scheduled action of the template, with the group it scales, in logical-ID order."""
    found = []
    for logical_id, properties in template.of_type(SCHEDULED_ACTION):
        recurrence = template.at(properties, "Recurrence")
        known = recurrence is not UNKNOWN and not isinstance(recurrence, Reference)
        found.append(
            ScheduledAction(
                logical_id=logical_id,
                group=group_of(template, properties.get("AutoScalingGroupName"), groups),
                start=timestamp(template, properties.get("StartTime")),
                recurring=recurrence is not None if known else None,
                desired=template.integer(properties, "DesiredCapacity"),
                maximum=template.integer(properties, "MaxSize"),
            )
        )
    return tuple(found)


# -- the lifecycle controller -----------------------------------------------------------------

# Stands for a reference inside the controller's configuration JSON, so that the JSON parses
# and each group's name field still says which resource it is. Printable, because JSON strings
# take no control characters; logical IDs are alphanumeric, so it cannot clash with one.
_MARKER = "@@capblock-ref:{}@@"
_MARKER_PATTERN = re.compile("@@capblock-ref:([A-Za-z0-9]+)@@")


@dataclass(frozen=True, kw_only=True)
class ManagedGroup:
    """A node group the stack's Capacity Block controller sizes, from its ``Configuration``."""

    logical_id: str
    drain_lead: timedelta | None
    """How long before the end the controller scales the group to zero, when the entry says."""
    period: timedelta | None
    """How often the controller runs, when the configuration says."""


def controller_groups(template: Template) -> dict[str, ManagedGroup]:
    """The groups that a ``Custom::CapacityBlockController`` in the template manages, by ID.

    The configuration is JSON that the CDK writes as an ``Fn::Join`` with a ``Ref``
    or ``Fn::GetAtt`` for each group's name; the references are followed to the
    group's logical ID. A literal name is matched against the groups'
    ``NodegroupName`` / ``AutoScalingGroupName``. If the configuration cannot
    be read, every group it refers to counts as managed (with no drain lead),
    so that the rules stay silent rather than flag a group the controller sizes.
    """
    found: dict[str, ManagedGroup] = {}
    for _, properties in template.of_type(CONTROLLER):
        configuration = properties.get("Configuration")
        text = _render_configuration(template, configuration)
        parsed: Any = None
        if text is not None:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("groups"), list):
            found.update(_configured_groups(template, parsed))
        else:
            for logical_id in sorted(_referenced(configuration)):
                if template.type_of(logical_id) in (NODE_GROUP, AUTO_SCALING_GROUP):
                    found.setdefault(
                        logical_id,
                        ManagedGroup(logical_id=logical_id, drain_lead=None, period=None),
                    )
    return found


def _render_configuration(template: Template, value: Any) -> str | None:
    """The configuration JSON with each reference replaced by a marker naming its resource."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((name, argument),) = value.items()
    if name in ("Ref", "Fn::GetAtt"):
        target = template.resolve(value)
        if isinstance(target, Reference):
            return _MARKER.format(target.logical_id)
        return target if isinstance(target, str) else None
    if name == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
        delimiter, items = argument
        if not isinstance(delimiter, str) or not isinstance(items, list):
            return None
        rendered = [_render_configuration(template, item) for item in items]
        if any(part is None for part in rendered):
            return None
        return delimiter.join(part for part in rendered if part is not None)
    resolved = template.resolve(value)
    return resolved if isinstance(resolved, str) else None


def _configured_groups(
    template: Template, configuration: dict[str, Any]
) -> dict[str, ManagedGroup]:
    period_seconds = configuration.get("periodSeconds")
    period = (
        timedelta(seconds=period_seconds)
        if isinstance(period_seconds, int) and not isinstance(period_seconds, bool)
        else None
    )
    found: dict[str, ManagedGroup] = {}
    for entry in configuration["groups"]:
        if not isinstance(entry, dict):
            continue
        lead_seconds = entry.get("drainLeadSeconds")
        drain_lead = (
            timedelta(seconds=lead_seconds)
            if isinstance(lead_seconds, int) and not isinstance(lead_seconds, bool)
            else None
        )
        for key, resource_type, name_property in (
            ("nodegroupName", NODE_GROUP, "NodegroupName"),
            ("autoScalingGroupName", AUTO_SCALING_GROUP, "AutoScalingGroupName"),
        ):
            name = entry.get(key)
            if not isinstance(name, str):
                continue
            for logical_id in _named_resources(template, name, resource_type, name_property):
                found[logical_id] = ManagedGroup(
                    logical_id=logical_id, drain_lead=drain_lead, period=period
                )
    return found


def _named_resources(
    template: Template, name: str, resource_type: str, name_property: str
) -> list[str]:
    marked = _MARKER_PATTERN.fullmatch(name)
    if marked:
        logical_id = marked.group(1)
        return [logical_id] if template.type_of(logical_id) == resource_type else []
    return [
        logical_id
        for logical_id, properties in template.of_type(resource_type)
        if template.text(properties, name_property) == name
    ]


def _referenced(value: Any) -> set[str]:
    """Every logical ID a value refers to with ``Ref``, ``Fn::GetAtt`` or ``Fn::Sub``."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _referenced(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item.split(".", 1)[0] if isinstance(item, str) else None
                if isinstance(item, list) and item and isinstance(item[0], str):
                    target = item[0]
                if target:
                    found.add(target)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) and item else item
                if isinstance(text, str):
                    found |= {match.split(".", 1)[0] for match in _SUB_VARIABLE.findall(text)}
                found |= _referenced(item)
            else:
                found |= _referenced(item)
    return found


# -- time ---------------------------------------------------------------------------------------


def timestamp(template: Template, value: Any) -> datetime | _Unknown | None:
    """A ``StartTime``-style UTC timestamp; None when absent, UNKNOWN when unreadable here."""
    text = template.text(value)
    if text is None or isinstance(text, _Unknown):
        return text
    try:
        return parse_utc(text, what="StartTime")
    except CapacityBlockError:
        return UNKNOWN
