"""JSON schema to the TypeScript-like notation harmony uses to describe tools to the model.

Follows harmony's renderer where its test data pins it down (property comments, enums, defaults,
arrays, `oneOf`, `nullable`, titles and examples). Beyond that, three deliberate extensions, so
common schemas do not collapse to `any`: `anyOf` and type-less `enum`/`const` become unions, a
`null` type is `null`, and a function whose object schema has no properties is `() => any`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from engine.harmony.conversation import ToolDescription, ToolNamespace


def render_tools_section(namespaces: Iterable[ToolNamespace]) -> str:
    """`# Tools` followed by one `## name` block per namespace, sorted by name as harmony does."""
    sections = ["# Tools"]
    for namespace in sorted(namespaces, key=lambda ns: ns.name):
        sections.append(render_namespace(namespace))
    return "\n\n".join(sections)


def render_namespace(namespace: ToolNamespace) -> str:
    lines = [f"## {namespace.name}\n"]
    # A namespace without tools is prose; with tools its description becomes a comment.
    prefix = "// " if namespace.tools else ""
    lines += [prefix + line for line in _lines(namespace.description or "")]
    if namespace.tools:
        lines.append(f"namespace {namespace.name} {{\n")
        for tool in namespace.tools:
            lines += [f"// {line}" for line in _lines(tool.description)]
            lines.append(render_function_type(tool) + "\n")
        lines.append(f"}} // namespace {namespace.name}")
    return "\n".join(lines)


def render_function_type(tool: ToolDescription) -> str:
    params = tool.parameters
    if params is None or _is_empty_object(params):
        return f"type {tool.name} = () => any;"
    return f"type {tool.name} = (_: {schema_to_typescript(params)}) => any;"


def schema_to_typescript(schema: Any, indent: str = "", *, describe_object: bool = True) -> str:
    """The type of `schema`; object properties are written one per line, prefixed by `indent`."""
    if not isinstance(schema, Mapping):
        return "any"
    one_of = schema.get("oneOf")
    if isinstance(one_of, list):
        return "".join(f"\n{indent} | {_variant(v, indent)}" for v in one_of)
    any_of = schema.get("anyOf")
    if isinstance(any_of, list) and any_of:
        return " | ".join(schema_to_typescript(v, indent) for v in any_of)
    kind = schema.get("type")
    if isinstance(kind, list):
        names = ["number" if k == "integer" else k for k in kind if isinstance(k, str)]
        if names:
            return " | ".join(names)
    if kind == "object":
        return _object(schema, indent, describe_object)
    if kind == "string":
        values = [f'"{v}"' for v in _enum(schema) if isinstance(v, str)]
        return " | ".join(values) if values else "string"
    if kind in ("number", "integer"):
        return "number"
    if kind in ("boolean", "null"):
        return str(kind)
    if kind == "array":
        items = schema.get("items")
        return f"{schema_to_typescript(items, indent)}[]" if items is not None else "Array<any>"
    if kind is None and _enum(schema):
        return " | ".join(_json(v) for v in _enum(schema))
    if kind is None and "const" in schema:
        return _json(schema["const"])
    return "any"


def _object(schema: Mapping[str, Any], indent: str, describe: bool) -> str:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return "object"
    out = []
    description = schema.get("description")
    if describe and isinstance(description, str):
        out.append(_comment(description, indent))
    out.append("{\n")
    required = schema.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    for name, prop in properties.items():
        out.append(_property(str(name), prop, name in required_names, indent))
    out.append(f"{indent}}}")
    return "".join(out)


def _property(name: str, prop: Any, required: bool, indent: str) -> str:
    if not isinstance(prop, Mapping):
        prop = {}
    out = []
    optional = "" if required else "?"
    title = prop.get("title")
    if isinstance(title, str):
        out.append(f"{indent}// {title}\n{indent}//\n")
    description = prop.get("description")
    one_of = prop.get("oneOf")
    if not isinstance(one_of, list) and isinstance(description, str):
        out.append(_comment(description, indent))
    examples = prop.get("examples")
    if isinstance(examples, list) and examples:
        out.append(f"{indent}// Examples:\n")
        out += [f"{indent}// - {_json(example)}\n" for example in examples]
    if isinstance(one_of, list):
        out.append(_one_of_property(name, optional, prop, one_of, indent))
        return "".join(out)
    type_text = _nullable(prop, schema_to_typescript(prop, indent + "    ", describe_object=False))
    out.append(f"{indent}{name}{optional}: {type_text},")
    if "default" in prop:
        out.append(f" // default: {_default(prop, prop['default'])}")
    out.append("\n")
    return "".join(out)


def _one_of_property(
    name: str, optional: str, prop: Mapping[str, Any], variants: list[Any], indent: str
) -> str:
    # Variant comments trail each `| type` line, so the property's own comments go above it.
    out = []
    description = _description(prop)
    # Said once: above the property, or (when it repeats the first variant's) after that variant.
    first = variants[0] if variants else None
    described_above = description is not None and description != _description(first)
    if described_above:
        out.append(_comment(str(description), indent))
    if "default" in prop:
        out.append(f"{indent}// default: {_default(prop, prop['default'])}\n")
    out.append(f"{indent}{name}{optional}:\n")
    for variant in variants:
        hide = described_above and _description(variant) == description
        out.append(f"{indent} | {_variant(variant, indent, hide_description=hide)}\n")
    out.append(f"{indent},\n")
    return "".join(out)


def _variant(variant: Any, indent: str, *, hide_description: bool = False) -> str:
    type_text = schema_to_typescript(variant, indent + "   ")
    if not isinstance(variant, Mapping):
        return type_text
    type_text = _nullable(variant, type_text)
    trailing = []
    description = _description(variant)
    if description is not None and not hide_description:
        trailing.append(description)
    if "default" in variant:
        trailing.append(f"default: {_default(variant, variant['default'])}")
    return type_text + (f" // {' '.join(trailing)}" if trailing else "")


def _nullable(schema: Mapping[str, Any], type_text: str) -> str:
    if schema.get("nullable") is True and "null" not in type_text:
        return f"{type_text} | null"
    return type_text


def _default(schema: Mapping[str, Any], value: Any) -> str:
    # Harmony quotes string defaults but leaves enum defaults bare: `// default: celsius`.
    if isinstance(value, str):
        return value if _enum(schema) else f'"{value}"'
    return _json(value)


def _enum(schema: Mapping[str, Any]) -> list[Any]:
    values = schema.get("enum")
    return values if isinstance(values, list) else []


def _json(value: Any) -> str:
    # serde_json's compact form, which is what harmony prints.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _comment(text: str, indent: str) -> str:
    return "".join(f"{indent}// {line}\n" for line in _lines(text) or [""])


def _lines(text: str) -> list[str]:
    # Like Rust's str::lines: split on \n, drop a trailing \r and the final empty line.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _is_empty_object(schema: Mapping[str, Any]) -> bool:
    if schema.get("type") != "object" or "oneOf" in schema or "anyOf" in schema:
        return False
    return not schema.get("properties")


def _description(schema: Any) -> str | None:
    value = schema.get("description") if isinstance(schema, Mapping) else None
    return value if isinstance(value, str) else None
