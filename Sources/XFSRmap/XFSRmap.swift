// XFSRmap: reverse-mapping records, observations, check and rebuild.
