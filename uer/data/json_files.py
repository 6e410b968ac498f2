"""Reading the JSON data files of the tasks (SQuAD, C3, ChID, label maps): errors name the file, and the line
where the JSON breaks."""
from __future__ import annotations

import json
import os
from typing import Any, Iterator

from uer.errors import DataError
from uer.utils.io import check_input_file, read_lines


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The value of a UTF-8 JSON file (``what`` names it in errors: "SQuAD-format file", ...)."""
    check_input_file(path, what)
    text = "\n".join(line for _, line in read_lines(path))  # UTF-8 errors name their line; a BOM is skipped
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON ({err.msg}, column {err.colno}); the {what} must be JSON", path, err.lineno) from None


def read_json_lines(path: str | os.PathLike, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every non-blank line of a file with one JSON value a line."""
    check_input_file(path, what)
    for line_no, line in read_lines(path):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg}, column {err.colno}); the {what} has one JSON object a line",
                            path, line_no) from None
