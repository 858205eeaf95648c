"""gitsync: a Git sidecar. Pull mode is a drop-in for kubernetes/git-sync v4 (a revision
published into a shared volume by an atomic symlink swap); push mode commits and pushes
what the main container writes. Both drive the real `git` command line."""
