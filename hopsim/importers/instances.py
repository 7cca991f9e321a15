"""Instance settings from the files that set them, beside the plan and
describe-instances readers of hopsim/settings.py (whose `Instance`, option
checks and precedence these share):

- Terraform source: `aws_instance`, `aws_launch_template` and
  `aws_launch_configuration` `metadata_options` blocks, and module calls that
  pass a `metadata_options` object (the terraform-aws-modules convention),
  read with python-hcl2 without running terraform;
- CloudFormation: `MetadataOptions` of AWS::EC2::Instance,
  AWS::EC2::LaunchTemplate and AWS::AutoScaling::LaunchConfiguration;
- Karpenter `EC2NodeClass` `spec.metadataOptions` (Karpenter's defaults:
  hop limit 1, tokens required, from its CRD);
- eksctl `ClusterConfig` node groups: eksctl writes hop limit 2 and tokens
  optional, tokens required with `disableIMDSv1`, and hop limit 1 with tokens
  required with `disablePodIMDS` (eksctl's launch template builder).

A key the file leaves unset takes the default of the tool that launches
the instance (AWS's own: hop limit 1, tokens optional). A value written as
an expression is not known from source: one line asks for a plan instead.
User data that sets `ECS_AWSVPC_BLOCK_IMDS=true` is remembered on the
instance (the ECS reader cannot model that block yet, and says so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hopsim import settings
from hopsim.importers import hcl
from hopsim.importers.design import CannotModel
from hopsim.importers.text import (
    Document,
    cloudformation_yaml,
    is_json,
    json_document,
    yaml_documents,
)
from hopsim.settings import AWS_DEFAULTS, KEYS, Instance, SettingsError
from hopsim.topology.reader import read_bytes

KARPENTER_DEFAULTS = {"hop_limit": 1, "http_tokens": "required", "http_endpoint": "enabled",
                      "ipv6": False}
ECS_BLOCK = re.compile(r"ECS_AWSVPC_BLOCK_IMDS\s*=\s*[\"']?true", re.I)
# An iptables rule that drops forwarded traffic to IMDS (AWS's DOCKER-USER
# advice for ECS bridge mode; a FORWARD rule on a node's pod interfaces).
IPTABLES_BLOCK = re.compile(r"iptables\b[^\n]*-(?:I|A|-insert|-append)\s+(?:DOCKER-USER|FORWARD)\b"
                            r"[^\n]*169\.254\.169\.254[^\n]*-(?:j|-jump)\s+(?:DROP|REJECT)")


def blocks(user_data: Any) -> frozenset[str]:
    """The IMDS blocks a user data script sets up."""
    text = str(user_data or "")
    found = set()
    if ECS_BLOCK.search(text):
        found.add("ECS_AWSVPC_BLOCK_IMDS")
    if IPTABLES_BLOCK.search(text):
        found.add("iptables")
    return frozenset(found)
TERRAFORM_TYPES = ("aws_instance", "aws_launch_template", "aws_launch_configuration")
CFN_TYPES = {"AWS::EC2::Instance": ("MetadataOptions",),
             "AWS::EC2::LaunchTemplate": ("LaunchTemplateData", "MetadataOptions"),
             "AWS::AutoScaling::LaunchConfiguration": ("MetadataOptions",)}
CFN_USER_DATA = {"AWS::EC2::Instance": ("UserData",),
                 "AWS::EC2::LaunchTemplate": ("LaunchTemplateData", "UserData"),
                 "AWS::AutoScaling::LaunchConfiguration": ("UserData",)}
_CAMEL_KEYS = {"httpPutResponseHopLimit": "http_put_response_hop_limit",
               "httpTokens": "http_tokens", "httpEndpoint": "http_endpoint",
               "httpProtocolIPv6": "http_protocol_ipv6"}
_PASCAL_KEYS = {"HttpPutResponseHopLimit": "http_put_response_hop_limit",
                "HttpTokens": "http_tokens", "HttpEndpoint": "http_endpoint",
                "HttpProtocolIpv6": "http_protocol_ipv6"}


def read(path: str | Path) -> list[Instance]:
    """The instances of any settings file hopsim reads: a plan or describe-
    instances output (hopsim.settings), Terraform source, CloudFormation, a
    Karpenter EC2NodeClass, an eksctl ClusterConfig. Raise SettingsError
    with one line (and the line of the file, where there is one)."""
    file = str(path)
    try:
        raw = read_bytes(path, settings.MAX_BYTES)
    except OSError as exc:
        raise SettingsError(f"cannot read: {exc.strerror}") from None
    if len(raw) > settings.MAX_BYTES:
        raise SettingsError(f"larger than {settings.MAX_BYTES:,} bytes")
    text = raw.decode("utf-8", errors="replace")
    try:
        if file.lower().endswith(".tf"):
            return _terraform(text, file)
        if is_json(text) or file.lower().endswith(".json"):
            try:
                doc = json_document(text)
            except CannotModel:
                return settings.read(path)  # which says how it is not JSON
            values = doc.values
            if isinstance(values, dict) and "Resources" in values:
                return _cloudformation(doc, file)
            return settings.read(path)
        documents = yaml_documents(cloudformation_yaml(text))
    except CannotModel as cannot:
        where = f"line {cannot.line}: " if cannot.line else ""
        raise SettingsError(f"{where}{cannot.message}") from None
    found: list[Instance] = []
    for doc in documents:
        values = doc.values if isinstance(doc.values, dict) else {}
        if values.get("kind") == "EC2NodeClass":
            found.append(_karpenter(doc, file))
        elif values.get("kind") == "ClusterConfig":
            found += _eksctl(doc, file)
        elif "Resources" in values:
            found += _cloudformation(doc, file)
    if not found and not any(isinstance(d.values, dict) and (
            d.values.get("kind") in ("EC2NodeClass", "ClusterConfig")
            or "Resources" in d.values) for d in documents):
        raise SettingsError("not a settings file hopsim reads: expected `terraform show -json` "
                            "or `aws ec2 describe-instances` output, Terraform source (.tf), "
                            "CloudFormation, a Karpenter EC2NodeClass or an eksctl "
                            "ClusterConfig")
    return found


def _instance(address: str, file: str, found: Mapping[str, Any],
              lines: Mapping[str, int | None], defaults: Mapping[str, Any], default_origin: str,
              imds_blocks: frozenset[str] = frozenset()) -> Instance:
    settings_ = {**AWS_DEFAULTS, **defaults, **found}
    origin = {}
    for key in KEYS:
        line = lines.get(key)
        origin[key] = (f"{file}:{line}" if line else file) if key in found else default_origin
    return Instance(address, {k: settings_[k] for k in KEYS}, origin,
                    source_lines={k: v for k, v in lines.items() if v and k in found},
                    source_file=file, imds_blocks=imds_blocks)


def _checked(address: str, raw: Mapping[str, Any], line: int | None = None) -> dict[str, Any]:
    """hopsim.settings' checks, with the line of the file in the message."""
    try:
        return settings._options(address, raw)
    except SettingsError as error:
        raise SettingsError(f"line {line}: {error}" if line else str(error)) from None


# --- Terraform source ----------------------------------------------------------------


def _terraform(text: str, file: str) -> list[Instance]:
    """Instances whose options are all literals; one written with an expression
    is left out (a plan knows it), and is the error when no other is known."""
    out: list[Instance] = []
    unknown: list[SettingsError] = []
    for block in hcl.resources(text, file, *TERRAFORM_TYPES, "module"):
        try:
            out.append(_terraform_instance(block, file))
        except SettingsError as error:
            unknown.append(error)
        except _NoOptions:
            continue
    if not out and unknown:
        raise unknown[0]
    return out


class _NoOptions(Exception):
    """A module call that passes no metadata options."""


def _terraform_instance(block: hcl.Block, file: str) -> Instance:
    options = hcl.block_values(block.body.get("metadata_options"))
    if options is None and hcl.dynamic_block(block.body, "metadata_options"):
        line = block.line_of("dynamic")
        raise SettingsError(f"line {line or block.line}: {block.address}: metadata_options is "
                            "a dynamic block: not known without running terraform; give the "
                            "plan (`terraform show -json`) instead")
    if block.kind == "module" and options is None:
        raise _NoOptions  # a module's own defaults: unknown here
    raw: dict[str, Any] = {}
    lines: dict[str, int | None] = {}
    for key, value in (options or {}).items():
        hop_key = _TF_TO_HOPSIM.get(key)
        if hop_key is None:
            continue
        line = block.line_of("metadata_options", key)
        known = hcl.literal(value)
        if known is None:
            raise SettingsError(
                f"line {line or block.line}: {block.address}: {key} is an expression "
                f"({hcl.shown(value)}): not known without running terraform; give the "
                "plan (`terraform show -json`) instead")
        raw[key] = known
        lines[hop_key] = line
    found = _checked(block.address, raw, block.line)
    user_data = str(block.body.get("user_data", "")) + str(block.body.get("user_data_base64",
                                                                          ""))
    origin = ("AWS default (the module's own default may differ)"
              if block.kind == "module" else "AWS default")
    return _instance(block.address, file, found, lines, {}, origin,
                     blocks(user_data))


_TF_TO_HOPSIM = {"http_put_response_hop_limit": "hop_limit", "http_tokens": "http_tokens",
                 "http_endpoint": "http_endpoint", "http_protocol_ipv6": "ipv6"}


# --- CloudFormation -----------------------------------------------------------------


def _cloudformation(doc: Document, file: str) -> list[Instance]:
    resources = doc.values.get("Resources") if isinstance(doc.values, dict) else None
    out = []
    for name, resource in (resources or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") not in CFN_TYPES:
            continue
        path = ("Resources", name, "Properties", *CFN_TYPES[resource["Type"]])
        options = _get(doc.values, path)
        raw, lines = _renamed(options, _PASCAL_KEYS, doc, path)
        line = doc.at("Resources", name)
        found = _checked(str(name), raw, line[0] if line else None)
        user_data = _get(doc.values, ("Resources", name, "Properties",
                                      *CFN_USER_DATA[resource["Type"]]))
        out.append(_instance(str(name), file, found, lines, {}, "AWS default",
                             blocks(user_data)))
    return out


def _get(values: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict):
            return None
        values = values.get(key)
    return values


def _renamed(options: Any, names: Mapping[str, str], doc: Document, path: tuple[Any, ...]
             ) -> tuple[dict[str, Any], dict[str, int | None]]:
    """Metadata options in camelCase or PascalCase -> Terraform's names (what
    settings._options checks), with the line of each, in hopsim's key names."""
    raw: dict[str, Any] = {}
    lines: dict[str, int | None] = {}
    for key, value in (options or {}).items() if isinstance(options, dict) else ():
        tf_key = names.get(key)
        if tf_key is None:
            continue
        if tf_key == "http_put_response_hop_limit" and isinstance(value, str) and \
                value.strip().isdecimal():
            value = int(value)  # CloudFormation writes numbers as strings too
        raw[tf_key] = value
        at = doc.at(*path, key)
        lines[_TF_TO_HOPSIM[tf_key]] = at[0] if at else None
    return raw, lines


# --- Kubernetes-style files: Karpenter, eksctl ----------------------------------------------


def _karpenter(doc: Document, file: str) -> Instance:
    meta = doc.values.get("metadata") if isinstance(doc.values.get("metadata"), dict) else {}
    name = f"EC2NodeClass/{meta.get('name', 'default')}"
    path = ("spec", "metadataOptions")
    raw, lines = _renamed(_get(doc.values, path), _CAMEL_KEYS, doc, path)
    line = doc.at("metadata", "name")
    found = _checked(name, raw, line[0] if line else None)
    user_data = _get(doc.values, ("spec", "userData"))
    return _instance(name, file, found, lines, KARPENTER_DEFAULTS,
                     "Karpenter default (EC2NodeClass CRD)",
                     blocks(user_data))


def _eksctl(doc: Document, file: str) -> list[Instance]:
    out = []
    for group_key in ("nodeGroups", "managedNodeGroups"):
        groups = doc.values.get(group_key)
        for i, group in enumerate(groups if isinstance(groups, list) else []):
            if not isinstance(group, dict):
                continue
            name = f"{group_key}/{group.get('name', i)}"
            if isinstance(group.get("launchTemplate"), dict):
                continue  # the group's own launch template sets them: not in this file
            pod_imds_off = group.get("disablePodIMDS") is True
            v1_off = group.get("disableIMDSv1") is True or pod_imds_off
            found = {"hop_limit": 1 if pod_imds_off else 2,
                     "http_tokens": "required" if v1_off else "optional"}
            lines = {"hop_limit": _line(doc, group_key, i, "disablePodIMDS"),
                     "http_tokens": _line(doc, group_key, i, "disableIMDSv1")
                     or _line(doc, group_key, i, "disablePodIMDS")}
            instance = _instance(name, file, found, {k: v for k, v in lines.items() if v},
                                 {}, "AWS default")
            origin = dict(instance.origin)
            for key in ("hop_limit", "http_tokens"):
                if not lines[key]:
                    origin[key] = "eksctl default"
            out.append(Instance(instance.address, instance.settings, origin,
                                source_lines=instance.source_lines, source_file=file))
    return out


def _line(doc: Document, *path: Any) -> int | None:
    key = ".".join(str(p) for p in path)
    return doc.lines.get(key)
