"""From MLX's kernel text to one C++ translation unit for the shim.

Two rewrites touch the kernel's code: ``threadgroup T name[n];`` becomes ``MSL_TG(name, [n], T);``
(storage shared by the fibers of a threadgroup), and MSL's half literals (``1.5h``), which C++
lacks, become ``half(float(1.5))``; every other address-space keyword is a macro that expands to
nothing. ``#line`` directives make compiler messages and runtime
reports name lines of the kernel's own ``source`` and ``header`` strings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .signature import DType, InputInfo, ShapeInfo, TemplateValue, template_value_text

_KEYWORD = re.compile(r"\bthreadgroup\b")
_BRACKETS = {"(": ")", "[": "]", "{": "}"}
_ANGLES = {**_BRACKETS, "<": ">"}


def mask_comments_and_strings(text: str) -> str:
    """``text`` with comments and literals blanked (same length and newlines), for scanning."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif text[i] in "\"'":
            end = i + 1
            while end < n and text[end] != text[i]:
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, n)
        else:
            i += 1
            continue
        for k in range(i, end):
            if out[k] != "\n":
                out[k] = " "
        i = end
    return "".join(out)


def _scan(masked: str, start: int, stops: str, pairs: dict[str, str]) -> int:
    """Index of the first character in ``stops`` outside ``pairs`` brackets, or len(masked)."""
    depth = 0
    closing = set(pairs.values())
    for j in range(start, len(masked)):
        c = masked[j]
        if depth == 0 and c in stops:
            return j
        if c in pairs:
            depth += 1
        elif c in closing:
            depth = max(depth - 1, 0)
    return len(masked)


def _split_declarators(masked: str, original: str, start: int, end: int) -> list[str]:
    parts, j = [], start
    while j < end:
        k = min(_scan(masked, j, ",", _ANGLES), end)
        parts.append(original[j:k].strip())
        j = k + 1
    return parts


_UNSUPPORTED = (
    'static_assert(sizeof(int) == 0, "the emulator cannot parse this threadgroup declaration '
    '(Metal allows no initialiser; declare `threadgroup T name[n];` alone)");'
)


def _declared_names(decls: list[str]) -> tuple[str, list[tuple[str, str]]] | None:
    """(type, [(name, dims)]) of ``T a[n], b[m]``, or None if that is not what ``decls`` holds."""
    first = re.match(r"(?s)(.*?)\b([A-Za-z_]\w*)\s*((?:\[.*\])?)$", decls[0])
    if first is None or not first.group(1).strip():
        return None
    names = [(first.group(2), first.group(3))]
    for decl in decls[1:]:
        more = re.match(r"(?s)([A-Za-z_]\w*)\s*((?:\[.*\])?)$", decl)
        if more is None:
            return None
        names.append((more.group(1), more.group(2)))
    return first.group(1).strip(), names


def rewrite_threadgroup(text: str) -> str:
    """Turn threadgroup variable declarations into MSL_TG(...) on the same lines."""
    masked = mask_comments_and_strings(text)
    out, pos = [], 0
    for m in _KEYWORD.finditer(masked):
        if m.start() < pos:
            continue
        # Template arguments come before anything else in a declaration, so `<` opens brackets.
        stop = _scan(masked, m.end(), "*&;[=(),{}", _ANGLES)
        if stop == len(masked) or masked[stop] not in "[;,=":
            continue  # a qualifier of a pointer or reference: the macro erases it
        semi = _scan(masked, m.end(), ";", _BRACKETS)
        parsed = None
        if "=" not in masked[m.end() : semi]:
            parsed = _declared_names(_split_declarators(masked, text, m.end(), semi))
        out.append(text[pos : m.start()])
        if parsed is None:  # erasing the keyword would silently give every thread its own copy
            out.append(_UNSUPPORTED)
        else:
            typ, names = parsed
            out.append(" ".join(f"MSL_TG({name}, {dims}, {typ});" for name, dims in names))
        out.append("\n" * text.count("\n", m.start(), semi + 1))  # keep later line numbers
        pos = semi + 1
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True)
class KernelParts:
    """Everything the generated library consists of, for one instantiation."""

    label: str  # the name given to metal_kernel(); prefixes file names in messages
    func_name: str
    header: str
    signature: str
    source: str
    instantiation: str
    inputs: Sequence[InputInfo]
    shapes: Sequence[ShapeInfo]
    output_dtypes: Sequence[DType]
    template: Sequence[tuple[str, TemplateValue]]
    attributes: Sequence[tuple[str, str]]
    atomic_outputs: bool


def _call_arguments(parts: KernelParts) -> list[str]:
    args: list[str] = []

    def buf(typ: str, deref: bool = False) -> None:
        cast = f"static_cast<{typ}*>(b[{len(args)}])"
        args.append(f"*{cast}" if deref else cast)

    for arr, shape in zip(parts.inputs, parts.shapes, strict=True):
        buf(f"const {arr.dtype.msl}", deref=arr.ndim == 0)
        if arr.ndim > 0:
            if shape.shape:
                buf("const int")
            if shape.strides:
                buf("const int64_t")
            if shape.ndim:
                buf("const int", deref=True)
    for dtype in parts.output_dtypes:
        buf(f"metal::atomic<{dtype.msl}>" if parts.atomic_outputs else dtype.msl)
    for attr, typ in parts.attributes:
        if typ == "uint3":
            args.append(f"metal::uint3(c.{attr}.x, c.{attr}.y, c.{attr}.z)")
        else:
            args.append(f"c.{attr}")
    return args


def launcher_text(parts: KernelParts) -> str:
    """The exported entry point: unpack the buffers and call the kernel for one thread."""
    targs = ""
    if parts.template:
        values = [
            ("true" if v else "false") if isinstance(v, bool) else template_value_text(v)
            for _, v in parts.template
        ]
        targs = "<" + ", ".join(values) + ">"
    call = ",\n      ".join(_call_arguments(parts))
    return (
        "static void msl_body(void* const* b, const msl_rt::ThreadCtx& c) {\n"
        "  (void)b;\n  (void)c;\n"
        f"  {parts.func_name}{targs}(\n      {call});\n"
        "}\n"
        "MSL_EXPORT int msl_abi_version() { return msl_rt::kAbiVersion; }\n"
        "MSL_EXPORT int msl_launch(const msl_rt::Buffer* buffers, int n, const uint32_t* grid,\n"
        "                          const uint32_t* tg, const msl_rt::Options* options,\n"
        "                          msl_rt::Report* report) {\n"
        "  return msl_rt::launch(msl_body, buffers, n, grid, tg, options, report);\n"
        "}\n"
    )


# A decimal literal with MSL's half suffix, not preceded by an identifier character or a dot.
_HALF_LITERAL = re.compile(r"(?<![\w.])((?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)[hH]\b")


def rewrite_half_literals(text: str) -> str:
    """``0.5h`` -> ``half(float(0.5))``, outside comments and strings; lines stay where they are."""
    masked = mask_comments_and_strings(text)
    out, last = [], 0
    for m in _HALF_LITERAL.finditer(masked):
        out += [text[last : m.start()], f"half(float({m.group(1)}))"]
        last = m.end()
    return "".join(out) + text[last:]


def file_stem(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label) or "kernel"


def translation_unit(parts: KernelParts) -> tuple[str, dict[str, str]]:
    """The C++ text, and the pseudo-files its #line directives name (so diagnostics show lines)."""
    stem = file_stem(parts.label)
    tail = "}\n" + parts.instantiation
    files = {
        f"{stem}/header": parts.header,
        f"{stem}/signature": parts.signature + tail,
        f"{stem}/source": parts.source,
        f"{stem}/launcher": launcher_text(parts),
    }
    tail_line = parts.signature.count("\n") + 1
    cpp = (
        '#include "msl_shim.h"\n'
        f'#line 1 "{stem}/header"\n{rewrite_threadgroup(rewrite_half_literals(parts.header))}\n'
        f'#line 1 "{stem}/signature"\n{parts.signature}'
        f'#line 1 "{stem}/source"\n{rewrite_threadgroup(rewrite_half_literals(parts.source))}\n'
        f'#line {tail_line} "{stem}/signature"\n{tail}'
        f'#line 1 "{stem}/launcher"\n{files[f"{stem}/launcher"]}'
    )
    return cpp, files
