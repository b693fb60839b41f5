"""The built-in tool namespaces gpt-oss was trained with (browser, python), as data.

The wording must match what the model saw in training, character for character; the harmony test
files (test_browser_and_python_tool.txt) pin it down.
"""

from __future__ import annotations

from engine.harmony.conversation import ToolDescription, ToolNamespace

_BROWSER_DESCRIPTION = """\
Tool for browsing.
The `cursor` appears in brackets before each browsing display: `[{{cursor}}]`.
Cite information from the tool using the following format:
`【{{cursor}}†L{{line_start}}(-L{{line_end}})?】`, for example: `【6†L9-L11】` or `【8†L3】`.
Do not quote more than 10 words directly from the tool output.
sources={source} (default: {source})"""

_SEARCH = ToolDescription(
    "search",
    "Searches for information related to `query` and displays `topn` results.",
    {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "topn": {"type": "number", "default": 10},
            "source": {"type": "string"},
        },
        "required": ["query"],
    },
)

_OPEN = ToolDescription(
    "open",
    "\n".join(
        [
            "Opens the link `id` from the page indicated by `cursor` starting at line number "
            "`loc`, showing `num_lines` lines.",
            "Valid link ids are displayed with the formatting: `【{id}†.*】`.",
            "If `cursor` is not provided, the most recent page is implied.",
            "If `id` is a string, it is treated as a fully qualified URL associated with `source`.",
            "If `loc` is not provided, the viewport will be positioned at the beginning of the "
            "document or centered on the most relevant passage, if available.",
            "Use this function without `id` to scroll to a new location of an opened page.",
        ]
    ),
    {
        "type": "object",
        "properties": {
            "id": {"type": ["number", "string"], "default": -1},
            "cursor": {"type": "number", "default": -1},
            "loc": {"type": "number", "default": -1},
            "num_lines": {"type": "number", "default": -1},
            "view_source": {"type": "boolean", "default": False},
            "source": {"type": "string"},
        },
    },
)

_FIND = ToolDescription(
    "find",
    "Finds exact matches of `pattern` in the current page, or the page given by `cursor`.",
    {
        "type": "object",
        "properties": {
            "pattern": {"type": "string"},
            "cursor": {"type": "number", "default": -1},
        },
        "required": ["pattern"],
    },
)

PYTHON_DESCRIPTION = (
    "Use this tool to execute Python code in your chain of thought. The code will not be shown to "
    "the user. This tool should be used for internal reasoning, but not for code that is intended "
    "to be visible to the user (e.g. when creating plots, tables, or files).\n"
    "\n"
    "When you send a message containing Python code to python, it will be executed in a stateful "
    "Jupyter notebook environment. python will respond with the output of the execution or time "
    "out after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. "
    "Internet access for this session is UNKNOWN. Depends on the cluster."
)


def browser_namespace(source: str = "web") -> ToolNamespace:
    """The `browser` namespace (search, open, find); `source` names the search backend."""
    description = _BROWSER_DESCRIPTION.format(source=source)
    return ToolNamespace("browser", description, (_SEARCH, _OPEN, _FIND))


def python_namespace(description: str = PYTHON_DESCRIPTION) -> ToolNamespace:
    """The `python` namespace: prose only, the model writes code as the message content."""
    return ToolNamespace("python", description)
