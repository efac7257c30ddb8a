// XFSFormat: the XFS v5 on-disk format.
