// XFSTransaction: buffers joined to a transaction, logged, and laundered at commit.
