"""helpers.runtime.flow: undo on failure, and nothing swallowed; and the atomic file replacement built on it."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from helpers.runtime import state
from helpers.runtime.flow import on_failure, on_failure_async


def test_on_failure_undoes_and_lets_the_exception_go_on():
    undone = []
    with pytest.raises(ValueError, match="boom"), on_failure(lambda: undone.append(1)):
        raise ValueError("boom")
    assert undone == [1]


def test_on_failure_undoes_an_interrupted_block_too():
    undone = []
    with pytest.raises(KeyboardInterrupt), on_failure(lambda: undone.append(1)):
        raise KeyboardInterrupt
    assert undone == [1]


def test_on_failure_keeps_what_a_block_that_succeeds_made():
    undone = []
    with on_failure(lambda: undone.append(1)):
        pass
    assert undone == []


def test_an_undo_that_fails_keeps_the_blocks_error_as_its_context():
    def undo():
        raise OSError("undo failed")

    with pytest.raises(OSError, match="undo failed") as info, on_failure(undo):
        raise ValueError("first")
    assert isinstance(info.value.__context__, ValueError)


def test_on_failure_async_undoes_a_cancelled_task():
    undone = []

    async def undo():
        undone.append(1)

    async def block():
        async with on_failure_async(undo):
            await asyncio.sleep(30)

    async def main():
        task = asyncio.ensure_future(block())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert undone == [1]


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "services.json"
    state.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        state.write_json(path, {"a": object()})  # not JSON
    assert json.loads(path.read_text()) == {"a": 1}
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(OSError):  # the temporary file is written, then cannot take a directory's place
        state.replace_file(tmp_path / "a-directory", "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory", "services.json"]


def test_replace_file_sets_the_mode_it_is_given(tmp_path):
    path = tmp_path / "shared.json"
    state.replace_file(path, "{}", mode=0o640)
    assert path.read_text() == "{}"
    assert os.stat(path).st_mode & 0o777 == 0o640
    state.write_secret_atomic(tmp_path / "secret", "s3cret")
    assert os.stat(tmp_path / "secret").st_mode & 0o777 == 0o600
