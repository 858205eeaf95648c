"""Parsers of git output: merge-tree's conflicts (push) and ls-remote's refs (pull)."""

from __future__ import annotations

from gitsync.merge import ZERO, Conflicted, parse_merge_tree, theirs_index_info
from gitsync.pull import pick_hash

# `git merge-tree --write-tree -z LOCAL REMOTE` for a content conflict on a.txt and a
# modify/delete conflict on b.txt (the remote deleted it), as git 2.39 prints it.
MERGE_TREE = (
    b"1111111111111111111111111111111111111111\0"
    b"100644 aaaa000000000000000000000000000000000001 1\ta.txt\0"
    b"100644 aaaa000000000000000000000000000000000002 2\ta.txt\0"
    b"100644 aaaa000000000000000000000000000000000003 3\ta.txt\0"
    b"100644 bbbb000000000000000000000000000000000001 1\tb.txt\0"
    b"100644 bbbb000000000000000000000000000000000002 2\tb.txt\0"
    b"\0"
    b"1\0a.txt\0Auto-merging\0Auto-merging a.txt\n\0"
)


def test_parse_merge_tree() -> None:
    tree, entries = parse_merge_tree(MERGE_TREE)
    assert tree == "1" * 40
    assert [(e.path, e.stage) for e in entries] == [
        ("a.txt", 1), ("a.txt", 2), ("a.txt", 3), ("b.txt", 1), ("b.txt", 2)]


def test_clean_merge_has_only_a_tree() -> None:
    assert parse_merge_tree(b"2222222222222222222222222222222222222222\0") == ("2" * 40, [])


def test_theirs_takes_stage_3_and_removes_what_the_remote_deleted() -> None:
    _, entries = parse_merge_tree(MERGE_TREE)
    info = theirs_index_info(entries).decode().splitlines()
    assert info == [
        "100644 aaaa000000000000000000000000000000000003\ta.txt",
        f"0 {ZERO}\tb.txt",
    ]
    assert Conflicted("100644", "x", 3, "a") == Conflicted("100644", "x", 3, "a")


LS_REMOTE = (
    "1111111111111111111111111111111111111111\tHEAD\n"
    "2222222222222222222222222222222222222222\trefs/heads/main\n"
    "3333333333333333333333333333333333333333\trefs/heads/feature/main\n"
    "4444444444444444444444444444444444444444\trefs/tags/v1\n"
    "5555555555555555555555555555555555555555\trefs/tags/v1^{}\n"
)


def test_pick_hash() -> None:
    assert pick_hash(LS_REMOTE, "HEAD") == "1" * 40
    assert pick_hash(LS_REMOTE, "main") == "2" * 40  # not feature/main
    assert pick_hash(LS_REMOTE, "v1") == "5" * 40  # the commit, not the tag object
    assert pick_hash(LS_REMOTE, "nope") == ""
