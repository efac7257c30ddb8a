// XFSMemoryFile: swappable, file-indexed memory (the kernel's "xfile").
