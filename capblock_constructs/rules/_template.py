"""Loading templates (JSON, or YAML with CloudFormation's short-form tags) and finding them.

Standard library and PyYAML only: ``capblock check`` and the cfn-lint rules
load templates without the AWS CDK.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import CapacityBlockError

__all__ = ["TemplateError", "find_templates", "load_template", "parse_template"]

TEMPLATE_SUFFIX = ".template.json"
"""What the CDK names a synthesized template in ``cdk.out``."""
NESTED_ASSEMBLY_PREFIX = "assembly-"
"""What the CDK names the folder of a Stage's nested cloud assembly inside ``cdk.out``."""


# CloudFormation's top-level sections besides Resources (template anatomy, CloudFormation
# user guide): a mapping with one of them is a template, even with no resources.
_TEMPLATE_SECTIONS = frozenset(
    {
        "AWSTemplateFormatVersion",
        "Conditions",
        "Description",
        "Mappings",
        "Metadata",
        "Outputs",
        "Parameters",
        "Rules",
        "Transform",
    }
)


class TemplateError(CapacityBlockError):
    """A template file cannot be read or parsed; the message names the file and the fix.

    A :class:`~capblock_constructs.errors.CapacityBlockError` (and so a
    ``ValueError``), so callers that already handle the library's errors
    handle this one too.
    """


# -- YAML with short-form tags ----------------------------------------------------------------

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CloudFormationLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader, with CloudFormation's short-form tags and no timestamps."""


# CloudFormation reads an unquoted 2031-03-17T11:30:00Z as a string, not a date; so must we,
# or a StartTime would come back as a datetime that no longer looks like the template.
_CloudFormationLoader.yaml_implicit_resolvers = {
    first: [item for item in resolvers if item[0] != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    """``!Ref x`` -> ``{"Ref": "x"}``, ``!GetAtt a.b`` -> ``{"Fn::GetAtt": ["a", "b"]}``, etc."""
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        # The short form names resource and attribute with one dot; attributes may hold more.
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_form)


# -- loading ------------------------------------------------------------------------------------


def parse_template(text: str, *, source: str) -> dict[str, Any]:
    """Parse template text (JSON or YAML); ``source`` names it in errors.

    JSON is tried first when the text starts with ``{``, because every JSON
    template is also meant to be read as JSON; anything else is YAML.
    """
    data: Any
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"it is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            raise TemplateError(f"{source}: {problem}; fix the file or regenerate it.") from None
    else:
        try:
            data = yaml.load(text, Loader=_CloudFormationLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise TemplateError(
                f"{source}: it is not valid YAML: {reason}{where}; fix the file."
            ) from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise TemplateError(
            f"{source}: it is {kind}, not a CloudFormation template (a mapping with Resources)."
        )
    resources = data.get("Resources")
    if resources is None and _TEMPLATE_SECTIONS.intersection(data):
        # The CDK writes a stack that holds only parameters or outputs without Resources;
        # it has nothing for the rules to judge, which is no reason to stop the check.
        return {**data, "Resources": {}}
    if not isinstance(resources, dict):
        raise TemplateError(
            f"{source}: it has no Resources mapping, so it is not a CloudFormation template; "
            "pass a template file or a cdk.out folder."
        )
    return data


def load_template(path: Path) -> dict[str, Any]:
    """Read and parse one template file: JSON, or YAML with CloudFormation's short-form tags.

    Short-form tags become their long forms (``!Ref x`` becomes ``{"Ref": "x"}``,
    ``!GetAtt a.b`` becomes ``{"Fn::GetAtt": ["a", "b"]}``, ``!Sub ...`` becomes
    ``{"Fn::Sub": ...}``), and unquoted timestamps stay strings, as CloudFormation
    reads them.

    :raises TemplateError: when the file is missing, unreadable, not UTF-8, not
        valid JSON or YAML, or not a mapping with ``Resources``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(
            f"{path}: no such file; pass a template file or a folder such as cdk.out."
        ) from None
    except IsADirectoryError:
        raise TemplateError(f"{path}: is a folder; pass it to find_templates() first.") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: it is not UTF-8 text, so not a template.") from None
    except OSError as exc:
        raise TemplateError(f"{path}: cannot be read: {exc.strerror or exc}.") from None
    return parse_template(text, source=str(path))


def _templates_in(folder: Path) -> list[Path]:
    """The templates of a cloud assembly: its own, then those of nested assemblies."""
    found = [item for item in folder.glob(f"*{TEMPLATE_SUFFIX}") if item.is_file()]
    for nested in folder.glob(f"{NESTED_ASSEMBLY_PREFIX}*"):
        if nested.is_dir():
            found.extend(_templates_in(nested))
    return found


def find_templates(paths: Sequence[Path]) -> list[Path]:
    """The template files to check: files as given, folders expanded; sorted, each once.

    A folder contributes every ``*.template.json`` in it and, recursively, in its
    nested cloud assemblies (``assembly-*`` folders, one per CDK Stage); other
    folders inside it, such as assets, are not searched.

    :raises TemplateError: listing every path that does not exist and every folder
        that holds no template, once all paths have been looked at.
    """
    found: set[Path] = set()
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            templates = _templates_in(path)
            if not templates:
                problems.append(
                    f"{path}: the folder holds no *{TEMPLATE_SUFFIX} file (nor do its "
                    f"{NESTED_ASSEMBLY_PREFIX}* folders); run 'cdk synth' first or pass the "
                    "template files."
                )
            found.update(templates)
        elif path.is_file():
            found.add(path)
        else:
            problems.append(
                f"{path}: no such file or folder; pass a template file or a folder such as cdk.out."
            )
    if problems:
        raise TemplateError(problems)
    return sorted(found)
