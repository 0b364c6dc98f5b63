#!/usr/bin/env python3
"""Read a repository from disk with python-tuf's ngclient.Updater, for interop tests.

usage: read_repo.py REPO_DIR TARGET_NAME OUT_FILE

Trusts REPO_DIR/metadata/1.root.json, refreshes (chaining any newer roots),
looks up TARGET_NAME and downloads it to OUT_FILE. A FetcherInterface subclass
maps "file-repo:///<path>" URLs to files below REPO_DIR, so no HTTP server is
needed. Prints a JSON summary on stdout; exits non-zero on any failure.
"""

import json
import os
import sys
import tempfile
from urllib.parse import unquote

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

PREFIX = "file-repo:///"


class DirFetcher(FetcherInterface):
    def __init__(self, base):
        self.base = os.path.realpath(base)
        self.requests = []

    def _fetch(self, url):
        if not url.startswith(PREFIX):
            raise DownloadHTTPError(f"unexpected url {url}", 400)
        rel = unquote(url[len(PREFIX):])
        path = os.path.realpath(os.path.join(self.base, rel))
        if not path.startswith(self.base + os.sep):
            raise DownloadHTTPError(f"{url} escapes the repository", 403)
        self.requests.append(rel)
        if not os.path.isfile(path):
            raise DownloadHTTPError(f"{url} not found", 404)
        with open(path, "rb") as f:
            data = f.read()
        return iter([data])


def main():
    repo, name, out_file = sys.argv[1], sys.argv[2], sys.argv[3]
    with tempfile.TemporaryDirectory() as md_dir:
        with open(os.path.join(repo, "metadata", "1.root.json"), "rb") as f:
            trusted_root = f.read()
        fetcher = DirFetcher(repo)
        updater = Updater(
            metadata_dir=md_dir,
            metadata_base_url=PREFIX + "metadata/",
            target_base_url=PREFIX + "targets/",
            fetcher=fetcher,
            bootstrap=trusted_root,
        )
        updater.refresh()
        info = updater.get_targetinfo(name)
        if info is None:
            raise SystemExit(f"target {name} not found")
        updater.download_target(info, filepath=out_file)
        trusted = updater._trusted_set  # summary only
        print(
            json.dumps(
                {
                    "root_version": trusted.root.version,
                    "timestamp_version": trusted.timestamp.version,
                    "snapshot_version": trusted.snapshot.version,
                    "targets_version": trusted.targets.version,
                    "length": info.length,
                    "hashes": info.hashes,
                    "custom": info.custom,
                    "requests": fetcher.requests,
                }
            )
        )


if __name__ == "__main__":
    main()
