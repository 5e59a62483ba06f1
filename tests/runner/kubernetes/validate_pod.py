#!/usr/bin/env python3
"""Validates Pod manifests offline, with no cluster.

usage: validate_pod.py SCHEMA POD.json...

Each file is checked against SCHEMA (the vendored Kubernetes Pod JSON schema,
see README.md) made strict as openapi2jsonschema --strict makes it: every
object schema with `properties` and no `additionalProperties` gets
`additionalProperties: false`, so a misspelt or unknown field fails. The
schema does not carry the API server's own name rules, so these are checked
too (k8s.io/apimachinery validation): the pod name a DNS-1123 label (kubectl
run also makes it a label value), label and annotation keys qualified names,
label values, container and volume names DNS-1123 labels, every volumeMount
naming a volume, mount paths absolute and distinct, subPaths relative
without '..', resource quantities, and the deadline and grace in range.

Prints "<file>: invalid: <reason>" per failure and "<n> valid" at the end;
exits 1 when any file is invalid, 2 when the validator itself cannot run.
"""
import json
import re
import sys

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed (Debian: apt-get install python3-jsonschema; "
          "`make test-deps` installs it)", file=sys.stderr)
    sys.exit(2)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$")


def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)


def qualified_name_errors(key, what):
    prefix, _, name = key.rpartition("/")
    errors = []
    if "/" in key and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
        errors.append(f"{what} key {key!r}: prefix is not a DNS-1123 subdomain")
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        errors.append(f"{what} key {key!r}: name is not a qualified name of at most 63 characters")
    return errors


def dns_label_errors(value, what):
    if not isinstance(value, str) or len(value) > 63 or not DNS_LABEL.match(value):
        return [f"{what} {value!r} is not a DNS-1123 label of at most 63 characters"]
    return []


def api_errors(pod):
    """The API server's rules that the schema leaves out."""
    errors = []
    meta = pod.get("metadata") or {}
    errors += dns_label_errors(meta.get("name"), "metadata.name")
    for key, value in (meta.get("labels") or {}).items():
        errors += qualified_name_errors(key, "label")
        if len(value) > 63 or not LABEL_VALUE.match(value):
            errors.append(f"label {key}: value {value!r} is not a label value of at most 63 characters")
    for key in meta.get("annotations") or {}:
        errors += qualified_name_errors(key, "annotation")
    spec = pod.get("spec") or {}
    if spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] < 1:
        errors.append("spec.activeDeadlineSeconds must be positive")
    if spec.get("terminationGracePeriodSeconds") is not None and spec["terminationGracePeriodSeconds"] < 0:
        errors.append("spec.terminationGracePeriodSeconds must not be negative")
    volumes = set()
    for volume in spec.get("volumes") or []:
        errors += dns_label_errors(volume.get("name"), "volume name")
        if volume.get("name") in volumes:
            errors.append(f"volume {volume.get('name')!r} appears twice")
        volumes.add(volume.get("name"))
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName", "")
        if "persistentVolumeClaim" in volume and (len(claim) > 253 or not DNS_SUBDOMAIN.match(claim)):
            errors.append(f"claimName {claim!r} is not a DNS-1123 subdomain")
    for container in spec.get("containers") or []:
        errors += dns_label_errors(container.get("name"), "container name")
        paths = set()
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                errors.append(f"volumeMount {mount.get('name')!r} names no volume")
            path = mount.get("mountPath", "")
            if not path.startswith("/"):
                errors.append(f"mountPath {path!r} is not absolute")
            if path in paths:
                errors.append(f"mountPath {path!r} appears twice")
            paths.add(path)
            sub = mount.get("subPath", "")
            if sub.startswith("/") or ".." in sub.split("/"):
                errors.append(f"subPath {sub!r} must be relative without '..'")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for name, quantity in (resources.get(kind) or {}).items():
                errors += qualified_name_errors(name, f"resources.{kind}")
                if not QUANTITY.match(str(quantity)):
                    errors.append(f"resources.{kind}.{name}: {quantity!r} is not a quantity")
    return errors


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    strict(schema)
    jsonschema.Draft4Validator.check_schema(schema)
    validator = jsonschema.Draft4Validator(schema)
    valid = 0
    for path in argv[2:]:
        with open(path, encoding="utf-8") as f:
            pod = json.load(f)
        errors = [f"{'.'.join(str(p) for p in e.absolute_path) or '(pod)'}: {e.message}"
                  for e in validator.iter_errors(pod)]
        errors += api_errors(pod)
        for error in errors:
            print(f"{path}: invalid: {error}")
        if not errors:
            valid += 1
    print(f"{valid} valid")
    return 0 if valid == len(argv) - 2 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
