"""Read platform exports into the canonical send log, accounting for every row.

``read_send_log`` is the public entry; ``load_send_log`` returns the log together with
the rejected rows and the per-file row accounting. One module per vendor declares its
layouts (:class:`Layout`); :mod:`._files` reads a file into a raw table and
:mod:`._assemble` turns the raw tables into messages; :mod:`._ingest` does the same for
the store, streamed, for inputs larger than memory.
"""

from ._assemble import (
           LAYOUTS,
           LoadResult,
           Staging,
           detect_layout,
           load_send_log,
           read_send_log,
           stage_files,
)
from ._files import LoadError, RawFile, detect_encoding, read_chunks, read_raw, records_json
from ._ingest import (
           Ingested,
           Spill,
           ingest_files,
           merge_spill,
           spill_folder,
           stage_to_spill,
           staging_workers,
)
from ._layout import Layout

__all__ = ["LAYOUTS", "Layout", "LoadError", "LoadResult", "RawFile", "detect_layout", "load_send_log",
           "detect_encoding", "read_chunks", "read_raw", "read_send_log", "records_json", "Staging", "stage_files", "Ingested",
           "Spill", "ingest_files", "merge_spill", "spill_folder", "stage_to_spill", "staging_workers"]
