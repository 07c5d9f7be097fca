"""Two digests of one plot (agent/facts/plotfile.digest, one per host, same
spec) compared: the one rule both the agent and the controller apply."""


def same(a, b):
    """Do two digests show the same bytes?  When not, what differs, in words."""
    if a["size"] != b["size"]:
        return False, "size %d != %d" % (a["size"], b["size"])
    if a["sha256"] != b["sha256"]:
        return False, "content differs (%s digest, same size %d)" % (a["method"], a["size"])
    return True, None
