// XFSBTree: the one generic XFS btree engine.
