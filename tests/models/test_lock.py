from pathlib import Path

import pytest

from models.lock import AlreadyRunning, ProcessLock


def test_second_holder_of_the_same_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "partnerbot.db"
    first = ProcessLock(db).acquire()
    with pytest.raises(AlreadyRunning, match="SQLite supports one bot process"):
        ProcessLock(db).acquire()
    first.release()
    ProcessLock(db).acquire().release()
