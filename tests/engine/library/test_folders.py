"""Watched folders: a rescan lists what changed, and indexing it brings the library up to date."""

from __future__ import annotations

from pathlib import Path

from engine.library import Library, folder_files, index_files, scan_folder
from tests.engine.library.documents import touch_later, write_text


def test_rescan_lists_added_modified_deleted_and_unchanged(library: Library, docs: Path) -> None:
    (docs / "sub").mkdir()
    (docs / ".hidden").mkdir()
    same = write_text(docs / "same.md", "Stays the same.")
    edited = write_text(docs / "sub" / "edited.txt", "Before.")
    deleted = write_text(docs / "deleted.md", "Soon gone.")
    write_text(docs / ".hidden" / "secret.md", "Not scanned.")
    write_text(docs / ".DS_Store", "Not a document.")
    (docs / "picture.png").write_bytes(b"\x89PNG")
    assert folder_files(docs) == [deleted, same, edited]

    folder_id = library.add_folder(docs)
    assert library.add_folder(docs) == folder_id
    first = scan_folder(library, folder_id)
    assert first.added == (deleted, same, edited) and first.to_index == first.added
    index_files(library, first.to_index, folder_id=folder_id)
    assert scan_folder(library, folder_id).unchanged == (deleted, same, edited)

    write_text(edited, "After, and longer.")
    touch_later(edited)
    deleted.unlink()
    added = write_text(docs / "sub" / "added.md", "New.")
    changes = scan_folder(library, folder_id)
    assert changes.added == (added,)
    assert changes.modified == (edited,)
    assert changes.deleted == (deleted,)
    assert changes.unchanged == (same,)

    report = index_files(library, changes.to_index, folder_id=folder_id)
    assert set(report.indexed) == {added, edited} and report.removed == (deleted,)
    assert {d.path for d in library.documents(folder_id=folder_id)} == {same, edited, added}
    assert [h.document.path for h in library.search("longer")] == [edited]


def test_removing_a_folder_forgets_its_documents(library: Library, docs: Path) -> None:
    inside = write_text(docs / "inside.md", "Folder wallaby.")
    outside = write_text(docs.parent / "outside.md", "Attached wallaby.")
    folder_id = library.add_folder(docs)
    index_files(library, [inside], folder_id=folder_id)
    index_files(library, [outside])
    library.remove_folder(folder_id)
    assert library.folders() == []
    assert [h.document.path for h in library.search("wallaby")] == [outside]


def test_a_folder_that_disappeared_reports_everything_deleted(library: Library, docs: Path) -> None:
    note = write_text(docs / "note.md", "Text.")
    folder_id = library.add_folder(docs)
    index_files(library, [note], folder_id=folder_id)
    note.unlink()
    docs.rmdir()
    assert scan_folder(library, folder_id).deleted == (note,)
