"""``python -m benchmarks.gcs_cp - gs://bucket/key``: the seed's ``gsutil cp - gs://...`` here.

gsutil talks to its JSON API host over HTTPS only (``http_base`` is fixed in gslib), and the GCS
emulator serves plain HTTP, so the seed's second leg cannot run gsutil itself. This is the closest
real tool: Google's ``google-cloud-storage`` client streaming stdin as one resumable upload with
its default 100 MiB chunks, as gsutil streams an upload of unknown size. The endpoint comes from
``STORAGE_EMULATOR_HOST``, as for any Google client.
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from typing import BinaryIO

warnings.filterwarnings("ignore", category=FutureWarning)

from google.api_core.client_options import ClientOptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import storage  # type: ignore[import-untyped]  # noqa: E402


class Stdin(io.RawIOBase):
    """stdin as the client library wants it: it asks ``tell()`` where the stream is, which a
    pipe cannot answer, so the bytes read so far are counted here."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._source = source
        self._position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "-" or not argv[1].startswith("gs://"):
        sys.stderr.write("usage: python -m benchmarks.gcs_cp - gs://BUCKET/KEY\n")
        return 2
    bucket, _, key = argv[1].removeprefix("gs://").partition("/")
    endpoint = os.environ.get("STORAGE_EMULATOR_HOST")
    client = storage.Client(
        project="local",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None,
    )
    client.bucket(bucket).blob(key).upload_from_file(Stdin(sys.stdin.buffer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
