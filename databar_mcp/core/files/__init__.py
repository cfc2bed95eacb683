"""Lists as files (issue 25): read a CSV, JSON Lines or .xlsx file row by row, map its columns to a run's
inputs, check every row before anything is sent, cut it into parts with lasting fingerprints, and write the
results joined to the input's own columns. No MCP and no HTTP here: tools and the CLI wire these together.

Where a path may be read or written is decided in `paths` alone.
"""

from databar_mcp.core.files.checks import BadRow, RowCheck, check_rows, param_text, params_of, row_problems
from databar_mcp.core.files.columns import ColumnMapping, InputSpec, map_columns
from databar_mcp.core.files.formats import FileFormat, format_of
from databar_mcp.core.files.parts import Part, PartParams, part_fingerprint, part_params, rows_of, split_parts
from databar_mcp.core.files.paths import OutputPlace, input_path, open_regular, output_path
from databar_mcp.core.files.problems import FileProblem, FileRefused, MissingColumns, UnreadableFile
from databar_mcp.core.files.source import InputFile, InputRow, iter_rows, open_input
from databar_mcp.core.files.writing import WrittenFile, aligned_results, result_columns, write_output

__all__ = [
    "BadRow",
    "ColumnMapping",
    "FileFormat",
    "FileProblem",
    "FileRefused",
    "InputFile",
    "InputRow",
    "InputSpec",
    "MissingColumns",
    "OutputPlace",
    "Part",
    "PartParams",
    "RowCheck",
    "UnreadableFile",
    "WrittenFile",
    "aligned_results",
    "check_rows",
    "format_of",
    "input_path",
    "iter_rows",
    "map_columns",
    "open_input",
    "open_regular",
    "output_path",
    "param_text",
    "params_of",
    "part_fingerprint",
    "part_params",
    "result_columns",
    "row_problems",
    "rows_of",
    "split_parts",
    "write_output",
]
