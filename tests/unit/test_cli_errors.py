"""How commands end on an error (drkit.cli_errors): one line, exit 2 refused or 1 failed, and no
traceback unless DRKIT_DEBUG=1; every invoke task goes through it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.tasks import Task
from pydantic import BaseModel, Field, ValidationError

from drkit.cli_errors import Ended, describe, guarded, main_guarded, one_line
from drkit.context import Credentials, MissingCredentials
from drkit.recovery import RecoveryError
from drkit.storage.objectstore import ObjectStoreError
from stackmodels import ConfigError, OutputsError

pytestmark = [pytest.mark.unit, pytest.mark.reliability]


class Request(BaseModel):
    days: int = Field(ge=1)


def validation_error() -> ValidationError:
    try:
        Request(days=0)
    except ValidationError as error:
        return error
    raise AssertionError("Request(days=0) validated")


def missing_bucket() -> ObjectStoreError:
    response = {"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}}
    cause = ClientError(response, "ListObjectsV2")  # type: ignore[arg-type]
    try:
        raise ObjectStoreError(f"s3://vault-x/catalog/: cannot list: {cause}") from cause
    except ObjectStoreError as error:
        return error


def test_refusals_exit_2_in_one_line() -> None:
    refusals = {
        RecoveryError("backup 'x' of 'trading-db' does not exist"): "error: backup 'x' of 'tra",
        ConfigError("Pulumi.x.yaml", ["a: unknown key", "b = 1: too small"]): (
            "error: invalid stack config in Pulumi.x.yaml (2 problem(s)): a: unknown key; b = 1"
        ),
        OutputsError("local", ["outputs file /tmp is a directory, not a file"]): (
            "error: stack outputs of stack 'local' are unusable: outputs file /tmp is a directory"
        ),
        validation_error(): "error: days = 0: Input should be greater than or equal to 1",
        missing_bucket(): "error: s3://vault-x/catalog/: cannot list: An error occurred (NoSuch",
    }
    for error, start in refusals.items():
        code, line = describe(error)
        assert code == 2 and line.startswith(start), line
        assert "\n" not in line
    assert describe(missing_bucket())[1].endswith("name a bucket that does not exist")


def test_missing_credentials_are_a_refusal_and_still_a_key_error() -> None:
    with pytest.raises(KeyError) as caught:
        Credentials().for_store("orders-db")
    assert isinstance(caught.value, MissingCredentials)
    code, line = describe(caught.value)
    assert code == 2 and line.startswith("error: no credentials for store 'orders-db': set DRKIT_")


def test_failures_exit_1_naming_the_cause() -> None:
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/vault")
    code, line = describe(unreachable)
    assert code == 2  # an endpoint that does not answer is one the operator can fix
    assert line.startswith("error: cannot reach http://127.0.0.1:9/vault (connection refused")
    assert describe(ConnectionError("server closed the connection"))[0] == 1
    assert describe(KeyError("orders"))[1].startswith("FAILED: KeyError: 'orders'")
    assert describe(RuntimeError("pg_restore exited 1:\nERROR: x\n  DETAIL: y"))[1].startswith(
        "FAILED: RuntimeError: pg_restore exited 1: ERROR: x DETAIL: y ("
    )
    assert len(one_line(RuntimeError("x" * 10_000))) == 2000


def exit_with(line: str, code: int) -> Exit:
    return Exit(line, code=code)


def test_guarded_turns_an_exception_into_one_line_and_its_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DRKIT_DEBUG", raising=False)

    def refuse(value: str) -> None:
        raise RecoveryError(f"--at {value!r} is\nnot a timestamp")

    def crash() -> None:
        raise ConnectionError("server closed the connection")

    def exits() -> None:
        raise Exit("error: first line\n  - second", code=2)

    with pytest.raises(Exit) as refused:
        guarded(refuse, exit_with)("soon")
    assert (refused.value.code, refused.value.message) == (
        2,
        "error: --at 'soon' is not a timestamp",
    )
    with pytest.raises(Exit) as failed:
        guarded(crash, exit_with)()
    assert failed.value.code == 1
    assert failed.value.message.startswith("FAILED: ConnectionError: server closed the connection")
    with pytest.raises(Exit) as exited:
        guarded(exits, exit_with)()
    assert (exited.value.code, exited.value.message) == (2, "error: first line - second")

    monkeypatch.setenv("DRKIT_DEBUG", "1")
    with pytest.raises(RecoveryError):
        guarded(refuse, exit_with)("soon")


def test_main_guarded_writes_one_line() -> None:
    written: list[str] = []

    def main() -> int:
        raise OutputsError("prod", ["outputs file /dev/zero is larger than 4096 KiB"])

    assert main_guarded(main, written.append) == 2
    assert written == [
        "error: stack outputs of stack 'prod' are unusable: outputs file /dev/zero is larger "
        "than 4096 KiB\n"
    ]
    assert main_guarded(lambda: 0, written.append) == 0


def test_a_command_that_ends_with_its_own_code_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Ended``: a failed plan or drill sets the exit code, with its own line if any; never a
    traceback, not even with DRKIT_DEBUG=1."""

    def failed_plan() -> None:
        raise Ended(1)

    def missed() -> None:
        raise Ended(1, "drill FAILED: an objective\nwas missed")

    monkeypatch.setenv("DRKIT_DEBUG", "1")
    with pytest.raises(Exit) as plain:
        guarded(failed_plan, exit_with)()
    assert (plain.value.code, plain.value.message) == (1, "")
    with pytest.raises(Exit) as drill:
        guarded(missed, exit_with)()
    assert (drill.value.code, drill.value.message) == (1, "drill FAILED: an objective was missed")
    written: list[str] = []
    assert main_guarded(missed, written.append) == 1
    assert written == ["drill FAILED: an objective\nwas missed\n"]


def every_task(collection: Collection) -> Iterator[tuple[str, Task[..., object]]]:
    for name, task in collection.tasks.items():
        yield name, task
    for prefix, child in collection.collections.items():
        for name, task in every_task(child):
            yield f"{prefix}.{name}", task


def test_every_invoke_task_is_guarded() -> None:
    import tasks

    found = dict(every_task(tasks.namespace))
    assert {"drill", "restore.postgres", "backup.store", "local.up", "verify"} <= set(found)
    unguarded = [name for name, task in found.items() if not getattr(task.body, "drkit_guarded", 0)]
    assert unguarded == []
    # invoke still reads each task's own arguments through the wrapper
    restore = tasks.restore_postgres
    assert "target_database" in restore.argspec(restore.body).parameters
