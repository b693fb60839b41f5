"""JSON schema to the TypeScript-like notation harmony uses to describe tools to the model.

gpt-oss saw exactly what openai-harmony renders, so this reproduces it for every schema, quirks
included: constructs harmony does not know (`anyOf`, `allOf`, `const`, type-less `enum`, `null`,
`$ref`) are `any`, descriptions are pasted without splitting their lines, a nested object repeats
its description, and numbers print as serde_json prints them. tests/engine/harmony/
test_render_oracle.py checks this against openai-harmony on random schemas; change nothing here
that the oracle does not agree with.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from engine.harmony.conversation import ToolDescription, ToolNamespace

_PROPERTY_INDENT = "    "
_VARIANT_INDENT = "   "
# serde_json keeps integers in these bounds exact and parses bigger ones as floats.
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1


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
    # Only a missing schema means "no arguments"; `{"type": "object"}` is still `(_: {\n})`.
    if tool.parameters is None:
        return f"type {tool.name} = () => any;"
    return f"type {tool.name} = (_: {schema_to_typescript(tool.parameters)}) => any;"


def schema_to_typescript(schema: Any, indent: str = "") -> str:
    """The type of `schema`; object properties are written one per line, prefixed by `indent`."""
    if not isinstance(schema, Mapping):
        return "any"
    one_of = _array(schema.get("oneOf"))
    if one_of is not None:
        return "".join(
            f"\n{indent} | {_variant(v, indent, show_description=True, in_property=False)}"
            for v in one_of
        )
    kind = schema.get("type")
    kinds = _array(kind)
    if kinds is not None:
        names = ["number" if k == "integer" else k for k in kinds if isinstance(k, str)]
        if names:
            return " | ".join(names)
    if kind == "object":
        return _object(schema, indent)
    if kind == "string":
        values = [f'"{v}"' for v in _enum(schema) if isinstance(v, str)]
        return " | ".join(values) if values else "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        items = schema.get("items")
        return f"{schema_to_typescript(items, indent)}[]" if "items" in schema else "Array<any>"
    return "any"


def _object(schema: Mapping[str, Any], indent: str) -> str:
    out = []
    description = _string(schema, "description")
    if description is not None:
        out.append(f"{indent}// {description}\n")
    out.append("{\n")
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        required_names = {r for r in _array(schema.get("required")) or () if isinstance(r, str)}
        for name, prop in properties.items():
            out.append(_property(str(name), prop, name in required_names, indent))
    out.append(f"{indent}}}")
    return "".join(out)


def _property(name: str, prop: Any, required: bool, indent: str) -> str:
    if not isinstance(prop, Mapping):
        prop = {}
    out = []
    label = f"{indent}{name}{'' if required else '?'}:"
    title = _string(prop, "title")
    if title is not None:
        out.append(f"{indent}// {title}\n{indent}//\n")
    # With a `oneOf` key (even a malformed one) the description is left to the variants' rules.
    description = _string(prop, "description")
    if "oneOf" not in prop and description is not None:
        out.append(f"{indent}// {description}\n")
    examples = _array(prop.get("examples"))
    if examples:
        out.append(f"{indent}// Examples:\n")
        out += [f'{indent}// - "{e}"\n' for e in examples if isinstance(e, str)]
    one_of = _array(prop.get("oneOf"))
    if one_of is not None:
        out.append(_one_of_property(label, prop, one_of, indent))
        return "".join(out)
    type_text = _nullable(prop, schema_to_typescript(prop, indent + _PROPERTY_INDENT))
    out.append(f"{label} {type_text},")
    if "default" in prop:
        out.append(f" // default: {_default(prop)}")
    out.append("\n")
    return "".join(out)


def _one_of_property(
    label: str, prop: Mapping[str, Any], variants: Sequence[Any], indent: str
) -> str:
    # harmony's rule: the property's description goes above unless the first variant says the
    # same; it then silences the first variant and any later one that repeats it.
    out = []
    description = _string(prop, "description")
    first = _string(variants[0], "description") if variants else None
    if description is not None and description != first:
        out.append(f"{indent}// {description}\n")
    if "default" in prop:
        out.append(f"{indent}// default: {_default(prop)}\n")
    out.append(f"{label}\n")
    for i, variant in enumerate(variants):
        variant_description = _string(variant, "description")
        show = description is None or (i > 0 and variant_description != description)
        text = _variant(variant, indent, show_description=show, in_property=True)
        out.append(f"{indent} | {text}\n")
    out.append(f"{indent},\n")
    return "".join(out)


def _variant(variant: Any, indent: str, *, show_description: bool, in_property: bool) -> str:
    type_text = schema_to_typescript(variant, indent + _VARIANT_INDENT)
    if not isinstance(variant, Mapping):
        return type_text
    type_text = _nullable(variant, type_text)
    trailing = []
    description = _string(variant, "description")
    if description is not None and show_description:
        trailing.append(description)
    if "default" in variant:
        # harmony has two code paths: a property's variants print defaults like properties do,
        # other variants (a nested or top-level oneOf) print the default as JSON.
        default = _default(variant) if in_property else json_text(variant["default"])
        trailing.append(f"default: {default}")
    return type_text + (f" // {' '.join(trailing)}" if trailing else "")


def _nullable(schema: Mapping[str, Any], type_text: str) -> str:
    # A substring test, as harmony's: `"nullish"` or `null[]` already "contain" null.
    if schema.get("nullable") is True and "null" not in type_text:
        return f"{type_text} | null"
    return type_text


def _default(schema: Mapping[str, Any]) -> str:
    # Strings are quoted without escaping, and not quoted at all when the schema has an enum.
    value = schema["default"]
    if isinstance(value, str):
        return value if _enum(schema) else f'"{value}"'
    return json_text(value)


def _enum(schema: Mapping[str, Any]) -> Sequence[Any]:
    return _array(schema.get("enum")) or ()


def _array(value: Any) -> Sequence[Any] | None:
    # A JSON array: a list, or a tuple in a schema written in Python.
    return value if isinstance(value, list | tuple) else None


def json_text(value: Any) -> str:
    """Compact JSON as serde_json writes it (harmony's defaults): floats in the shortest form
    that round-trips (`1e20`, `0.00001`, `-0.0`), integers beyond 64 bits as floats."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # Harmony gets the number as JSON text and parses it again; see _serde_json_f64.
        in_range = _I64_MIN <= value <= _U64_MAX
        return str(value) if in_range else _float_text(_serde_json_f64(str(value)))
    if isinstance(value, float):
        # serde_json has no NaN or infinity: such a number is null.
        parsed = _serde_json_f64(repr(value)) if math.isfinite(value) else math.nan
        return _float_text(parsed) if math.isfinite(parsed) else "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{json_text(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    raise TypeError(f"not a JSON value: {value!r}")


def _serde_json_f64(literal: str) -> float:
    """The float serde_json reads from a JSON number (`-12.5e-3`), without its exact-parsing
    feature: the first digits that fit a u64 (later ones only scale), then one multiplication
    or division by a power of ten. That can be one ulp off the true value, and harmony then
    prints that neighbour (`-3.008343552702317e-13` for Python's `-3.0083435527023166e-13`)."""
    text = literal.lower()
    negative = text.startswith("-")
    mantissa, _, exponent_text = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    significand, exponent, dropping = 0, 0, False
    for digit in map(int, whole):
        dropping = dropping or significand * 10 + digit > _U64_MAX
        if dropping:
            exponent += 1
        else:
            significand = significand * 10 + digit
    for digit in map(int, fraction):
        if significand * 10 + digit > _U64_MAX:
            break
        significand, exponent = significand * 10 + digit, exponent - 1
    exponent += int(exponent_text or "0")
    f = float(significand)
    while exponent < -308 and f != 0.0:
        f, exponent = f / 1e308, exponent + 308
    if -308 <= exponent <= 308:
        power = float(f"1e{abs(exponent)}")  # a correctly rounded literal, as in serde's table
        f = f * power if exponent >= 0 else f / power
    elif exponent > 308 and f != 0.0:
        f = math.inf  # serde_json refuses it; json_text prints null
    return -f if negative else f


def _float_text(value: float) -> str:
    # Python's repr finds the same shortest digits as ryu (serde_json); only the layout differs:
    # ryu writes plain decimals for exponents -5..15 and `1e20`/`1.5e-7` beyond.
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    point = len(digit_tuple) + exponent  # digits before the decimal point
    scientific = point - 1
    text: str
    if -5 <= scientific <= 15:
        if point <= 0:
            text = "0." + "0" * -point + digits
        elif point >= len(digits):
            text = digits + "0" * (point - len(digits)) + ".0"
        else:
            text = f"{digits[:point]}.{digits[point:]}"
    else:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        text = f"{mantissa}e{scientific}"
    return ("-" if value < 0 else "") + text


def _string(schema: Any, key: str) -> str | None:
    value = schema.get(key) if isinstance(schema, Mapping) else None
    return value if isinstance(value, str) else None


def _lines(text: str) -> list[str]:
    # Rust's str::lines: split on \n or \r\n (a \r not followed by \n stays), no final empty line.
    *ended, last = text.split("\n")
    return [line.removesuffix("\r") for line in ended] + ([last] if last else [])
