// XFSInMemoryBTree: btrees whose blocks are the pages of a memory file (the kernel's "xfbtree").
