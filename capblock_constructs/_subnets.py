"""Pick the subnets a Capacity Block's nodes may launch into: only those in its zone.

Capacity Blocks are zonal: "you must use the subnet in the same Availability
Zone (AZ) as the Capacity Block reservation" (EKS user guide). With subnets in
other zones the Auto Scaling group may try them and fail at random.

Rules:

- Without ``vpc_subnets`` the VPC's default selection is used, the same as
  aws-cdk's ``eks.Nodegroup`` (``vpc.selectSubnets(props.subnets)``): private
  subnets with egress, else isolated subnets, else public subnets.
- Subnets chosen by type, group name or other filters are narrowed to the
  block's zone silently; that is what a selection means.
- Subnets the user lists by hand (``vpc_subnets.subnets``) are never dropped
  silently: one in another zone is a problem naming the subnet, its zone and
  the block's zone.
- A subnet whose zone is unknown at synth time (``Subnet.from_subnet_id``, or
  a zone that is a token, as in an environment-agnostic stack) cannot be
  proven to be in the block's zone, so it is never kept. If it was listed by
  hand that is a problem that says how to import it with its zone.
- Nothing left is a problem naming the block's zone and every subnet seen
  with its zone; when some zone was unknown it also says why (an
  environment-agnostic stack, or a subnet imported without its zone) and how
  to fix that, and only then.
"""

from __future__ import annotations

from aws_cdk import Stack, Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ._problems import Problems
from .capacity_block import CapacityBlock

_UNKNOWN = "unknown at synth time"
# The zones of the placeholder VPC that Vpc.from_lookup returns until the CLI fills it.
_LOOKUP_DUMMY_ZONE = "dummy"


def select_block_subnets(
    *,
    vpc: ec2.IVpc,
    vpc_subnets: ec2.SubnetSelection | None,
    capacity_block: CapacityBlock,
    problems: Problems,
) -> list[ec2.ISubnet]:
    """The subnets of ``vpc`` (narrowed by ``vpc_subnets``) in the block's Availability Zone.

    Adds every problem found to ``problems`` and returns what is usable; it
    does not raise. See the module docstring for the rules.
    """
    zone = capacity_block.availability_zone
    explicit = vpc_subnets is not None and vpc_subnets.subnets is not None
    try:
        candidates = list(_select(vpc, vpc_subnets))
    except RuntimeError as error:
        # jsii surfaces the CDK's own selection errors as RuntimeError.
        problems.add(
            f"vpc_subnets selects nothing usable in the VPC ({_first_line(error)}); "
            f"select the VPC's subnets in {zone}, or pass them as vpc_subnets.subnets."
        )
        return []

    if candidates and all((_zone_of(s) or "").startswith(_LOOKUP_DUMMY_ZONE) for s in candidates):
        # Vpc.from_lookup before the CDK CLI has filled its context: placeholder subnets.
        # Accept them so this pass finishes and reports the missing key; the CLI then
        # synthesizes again with the real VPC, which is checked as usual.
        return candidates

    kept: list[ec2.ISubnet] = []
    seen: list[str] = []
    any_unknown = False
    for subnet in candidates:
        subnet_zone = _zone_of(subnet)
        name = _name_of(subnet)
        seen.append(f"{name} ({subnet_zone or _UNKNOWN})")
        any_unknown = any_unknown or subnet_zone is None
        if subnet_zone == zone:
            kept.append(subnet)
            continue
        if not explicit:
            continue
        if subnet_zone is None:
            problems.add(
                f"subnet {name} has no Availability Zone known at synth time, so it cannot be "
                f"shown to be in the Capacity Block's zone {zone}; import it with "
                f"ec2.Subnet.from_subnet_attributes(..., availability_zone={zone!r}) or "
                "leave it out."
            )
        else:
            problems.add(
                f"subnet {name} is in {subnet_zone}, but Capacity Block "
                f"{capacity_block.capacity_reservation_id} is in {zone}; instances can only "
                f"launch in {zone}, so remove the subnet from vpc_subnets.subnets."
            )

    if not kept:
        listed = ", ".join(seen) if seen else "none"
        problems.add(
            f"no subnet in {zone}, the Availability Zone of Capacity Block "
            f"{capacity_block.capacity_reservation_id}; subnets seen: {listed}. Add a subnet "
            f"in {zone} to the VPC (or to vpc_subnets){_unknown_zones_hint(vpc, any_unknown)}."
        )
    return kept


def _unknown_zones_hint(vpc: ec2.IVpc, any_unknown: bool) -> str:
    """Why some subnets' zones were unknown, and the fix, when any were; else nothing.

    An environment-agnostic stack knows no zone at all until deploy time; a
    stack with an account and region lacks a zone only for a subnet imported
    without one.
    """
    if not any_unknown:
        return ""
    stack = Stack.of(vpc)
    if Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region):
        return (
            f", and give stack {stack.node.path!r} an explicit account and region "
            "(env=Environment(account=..., region=...)) so subnet zones are known at synth time"
        )
    return (
        ", and import subnets with their zone (ec2.Subnet.from_subnet_attributes(..., "
        "availability_zone=...)): one whose zone is unknown at synth time cannot be used"
    )


def _select(vpc: ec2.IVpc, selection: ec2.SubnetSelection | None) -> list[ec2.ISubnet]:
    if selection is None:
        return list(vpc.select_subnets().subnets)
    if selection.subnets is not None:
        # Taken as given: the CDK's own selection would read each subnet's zone and
        # fail with a jsii error for subnets imported without one.
        return list(selection.subnets)
    return list(
        vpc.select_subnets(
            availability_zones=selection.availability_zones,
            one_per_az=selection.one_per_az,
            subnet_filters=selection.subnet_filters,
            subnet_group_name=selection.subnet_group_name,
            subnets=selection.subnets,
            subnet_type=selection.subnet_type,
        ).subnets
    )


def _zone_of(subnet: ec2.ISubnet) -> str | None:
    try:
        zone = subnet.availability_zone
    except RuntimeError:
        # Subnet.from_subnet_id() refuses to report a zone it was not given.
        return None
    if zone is None or Token.is_unresolved(zone):
        return None
    return zone


def _name_of(subnet: ec2.ISubnet) -> str:
    subnet_id = subnet.subnet_id
    if Token.is_unresolved(subnet_id):
        # A subnet defined in this app has no ID until deployment; its path identifies it.
        return subnet.node.path
    return subnet_id


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def check_block_region(scope: Construct, capacity_block: CapacityBlock, problems: Problems) -> None:
    """A Capacity Block can only be used from a stack in its own Region."""
    region = Stack.of(scope).region
    if Token.is_unresolved(region):
        return
    zone = capacity_block.availability_zone
    if not zone.startswith(f"{region}-") and not (
        zone.startswith(region) and zone[len(region) :].isalpha()
    ):
        problems.add(
            f"Capacity Block {capacity_block.capacity_reservation_id} is in {zone}, which is "
            f"not in the stack's region {region}; deploy this node group in a stack for the "
            "block's region."
        )
